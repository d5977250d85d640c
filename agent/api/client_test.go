package api

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/distributive-flow/dflow/artifact"
	"golang.org/x/crypto/ssh"
)

// answering is a client for a server that answers every request with
// status and body, as JSON.
func answering(t *testing.T, status int, body any) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(srv.Close)
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return NewClient(srv.URL, "node-1", signer)
}

func TestErrorCodesUnwrapToArtifactSentinels(t *testing.T) {
	for _, tc := range []struct {
		status    int
		code      string
		want      error
		permanent bool
	}{
		{http.StatusBadRequest, CodeDigestMismatch, artifact.ErrDigestMismatch, true},
		{http.StatusNotFound, CodeNotFound, artifact.ErrNotFound, true},
		{http.StatusRequestEntityTooLarge, CodeTooLarge, artifact.ErrTooLarge, true},
		{http.StatusInsufficientStorage, CodeNoSpace, artifact.ErrNoSpace, true},
		{http.StatusServiceUnavailable, "", nil, false},
		{http.StatusTooManyRequests, "", nil, false},
	} {
		c := answering(t, tc.status, ErrorBody{Error: "refused", Code: tc.code})
		err := c.RemoveArtifact(context.Background(), "sha256:00")
		var ae *APIError
		if !errors.As(err, &ae) {
			t.Fatalf("%d %q: %v is no *APIError", tc.status, tc.code, err)
		}
		if ae.Status != tc.status || ae.Code != tc.code || ae.Msg != "refused" {
			t.Errorf("%d %q: got %+v", tc.status, tc.code, ae)
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%d %q: %v does not wrap %v", tc.status, tc.code, err, tc.want)
		}
		if ae.Permanent() != tc.permanent {
			t.Errorf("%d %q: Permanent() = %v, want %v", tc.status, tc.code, ae.Permanent(), tc.permanent)
		}
	}
}

func TestStartProcessGateFailureIsGateError(t *testing.T) {
	gate := &GateError{ID: "v2-1", Probe: "GET /health", Reason: "exit status 3", LogTail: "boom\n"}
	c := answering(t, http.StatusUnprocessableEntity, ErrorBody{Error: gate.Error(), GateError: gate})
	_, err := c.StartProcess(context.Background(), StartRequest{ID: "v2-1"})
	var ge *GateError
	if !errors.As(err, &ge) {
		t.Fatalf("got %T %v, want a *GateError", err, err)
	}
	if *ge != *gate {
		t.Errorf("got %+v, want %+v", ge, gate)
	}

	// A 422 without a gate's fields (an unsafe bundle) stays an *APIError.
	c = answering(t, http.StatusUnprocessableEntity, ErrorBody{Error: "unsafe bundle"})
	_, err = c.StartProcess(context.Background(), StartRequest{ID: "v2-1"})
	var ae *APIError
	if errors.As(err, &ge) || !errors.As(err, &ae) || ae.Msg != "unsafe bundle" {
		t.Errorf("got %T %v, want an *APIError", err, err)
	}
}

func TestAlive(t *testing.T) {
	for state, want := range map[string]bool{
		StateStarting: true, StateReady: true, StateServing: true, StateDraining: true,
		StateStopped: false, StateFailed: false, StateExited: false,
	} {
		if got := (ProcessInfo{State: state}).Alive(); got != want {
			t.Errorf("%s: Alive() = %v, want %v", state, got, want)
		}
	}
}
