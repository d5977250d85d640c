package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/distributive-flow/dflow/agent/auth"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

var sentinels = []error{auth.ErrUnsigned, auth.ErrUnknownKey, auth.ErrBadSignature, auth.ErrExpired, auth.ErrWrongNode, auth.ErrReplayed}

// testNode is the node the tests' verifiers guard and their requests are
// signed for.
const testNode = "node-a-1f2e"

// requireSentinel asserts err wraps want and no other sentinel.
func requireSentinel(t testing.TB, want, err error) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, want)
	for _, s := range sentinels {
		if s != want {
			require.NotErrorIs(t, err, s, "error %q wraps more than one sentinel", err)
		}
	}
}

func newEd25519(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	s, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	return s
}

func newECDSA(t testing.TB, c elliptic.Curve) ssh.Signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(c, rand.Reader)
	require.NoError(t, err)
	s, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	return s
}

var rsaKeys sync.Map // bits -> *rsa.PrivateKey

func newRSA(t testing.TB, bits int) ssh.Signer {
	t.Helper()
	k, ok := rsaKeys.Load(bits)
	if !ok {
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		require.NoError(t, err)
		k, _ = rsaKeys.LoadOrStore(bits, priv)
	}
	s, err := ssh.NewSignerFromKey(k)
	require.NoError(t, err)
	return s
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// testServer is an httptest server behind Verifier.Middleware that records
// what the middleware logged and what the handler saw.
type testServer struct {
	*httptest.Server
	v *auth.Verifier

	mu      sync.Mutex
	logs    []string
	refused []error
	calls   int
}

// seen is what the default handler answers.
type seen struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	Query       string `json:"query"`
	BodySHA256  string `json:"body_sha256"`
	BodyLen     int    `json:"body_len"`
	Fingerprint string `json:"fingerprint"`
	ReadErr     string `json:"read_err"`
}

func startServer(t testing.TB, v *auth.Verifier) *testServer {
	t.Helper()
	ts := &testServer{v: v}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.calls++
		ts.mu.Unlock()
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		s := seen{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			BodySHA256: hex.EncodeToString(h.Sum(nil)), BodyLen: int(n),
			Fingerprint: auth.KeyFingerprint(r.Context()),
		}
		code := http.StatusOK
		if err != nil {
			s.ReadErr = err.Error()
			if errors.Is(err, auth.ErrBadSignature) {
				s.ReadErr = "BAD SIGNATURE: " + s.ReadErr
			}
			code = http.StatusUnprocessableEntity
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(s)
	})
	logf := func(format string, args ...any) {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		ts.logs = append(ts.logs, fmt.Sprintf(format, args...))
		for _, a := range args {
			if err, ok := a.(error); ok {
				ts.refused = append(ts.refused, err)
			}
		}
	}
	ts.Server = httptest.NewServer(v.Middleware(handler, logf))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testServer) lastRefusal(t testing.TB) error {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	require.NotEmpty(t, ts.refused, "middleware logged no refusal")
	return ts.refused[len(ts.refused)-1]
}

func (ts *testServer) handlerCalls() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.calls
}

// send sends req with a plain client (no signing) and returns the status and
// the decoded answer.
func send(t testing.TB, c *http.Client, req *http.Request) (int, seen, string) {
	t.Helper()
	if c == nil {
		c = &http.Client{}
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var s seen
	var e struct {
		Error string `json:"error"`
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnprocessableEntity {
		require.NoError(t, json.Unmarshal(body, &s), "answer %s", body)
	} else {
		require.NoError(t, json.Unmarshal(body, &e), "answer %s", body)
	}
	return resp.StatusCode, s, e.Error
}
