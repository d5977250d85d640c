package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/agent/auth"
	"github.com/distributive-flow/dflow/artifact"
)

// putArtifactPattern is the one route whose body streams to its handler
// (larger than auth.DefaultMaxBody, checked at its end): see Agent.Start.
const putArtifactPattern = "PUT /v1/artifacts/{digest}"

// routes registers the app and artifact API on mux.
func (a *Agent) routes(mux *http.ServeMux) {
	mux.HandleFunc("HEAD /v1/artifacts/{digest}", a.hasArtifact)
	mux.HandleFunc("GET /v1/artifacts", a.listArtifacts)
	mux.HandleFunc(putArtifactPattern, a.putArtifact)
	mux.HandleFunc("DELETE /v1/artifacts/{digest}", a.removeArtifact)
	mux.HandleFunc("POST /v1/releases/{digest}", a.prepareRelease)
	mux.HandleFunc("POST /v1/processes", a.handleStart)
	mux.HandleFunc("GET /v1/processes", a.handleList)
	mux.HandleFunc("POST /v1/processes/{id}/stop", a.handleStop)
	mux.HandleFunc("GET /v1/processes/{id}/log", a.handleLog)
	mux.HandleFunc("GET /v1/agent/log", a.handleAgentLog)
	mux.HandleFunc("POST /v1/switch", a.handleSwitch)
	mux.HandleFunc("GET /v1/checksum", a.handleChecksum)
}

// writeError answers err as {"error": ...} with the status it carries: a
// *GateError is 422 with its fields, an *httpError its status, anything
// else 500.
func writeError(w http.ResponseWriter, err error) {
	body := api.ErrorBody{Error: err.Error()}
	status := http.StatusInternalServerError
	var ge *api.GateError
	var he *httpError
	switch {
	case errors.As(err, &ge):
		status, body.GateError = http.StatusUnprocessableEntity, ge
	case errors.As(err, &he):
		status, body.Code = he.status, he.code
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}

// maxJSONBody bounds a JSON request body; the auth middleware has read and
// checked it whole already (auth.DefaultMaxBody).
const maxJSONBody = auth.DefaultMaxBody

// readJSON reads the whole request body (at most maxJSONBody bytes: 413
// beyond) and decodes it into v: exactly one JSON value, with nothing but
// white space after it (400 otherwise). Reading to the end first means
// nothing is decoded from a body whose signed hash has not been checked,
// even if one came as a stream. Unknown fields are ignored, so that a newer
// dflow can talk to an older agent during an upgrade.
func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	switch {
	case errors.Is(err, auth.ErrBadSignature):
		return errStatus(http.StatusUnauthorized, "read request body: %w", err)
	case err != nil:
		return errStatus(http.StatusBadRequest, "read request body: %w", err)
	case len(body) > maxJSONBody:
		return errStatus(http.StatusRequestEntityTooLarge, "request body is more than %d bytes", maxJSONBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return errStatus(http.StatusBadRequest, "decode request body: %w", err)
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
		return nil
	case err == nil:
		return errStatus(http.StatusBadRequest, "decode request body: a second JSON value after the first, at byte %d", dec.InputOffset()-int64(len(extra)))
	default:
		return errStatus(http.StatusBadRequest, "decode request body: trailing data after the JSON value: %w", err)
	}
}

func digestParam(r *http.Request) (string, error) {
	d := r.PathValue("digest")
	if !artifact.ValidDigest(d) {
		return "", errStatus(http.StatusBadRequest, "digest %q is not 64 lowercase hex digits", d)
	}
	return d, nil
}

func (a *Agent) hasArtifact(w http.ResponseWriter, r *http.Request) {
	d, err := digestParam(r)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if !a.rt.store.Has(d) {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (a *Agent) listArtifacts(w http.ResponseWriter, r *http.Request) {
	blobs, err := a.rt.store.List()
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]api.ArtifactInfo, 0, len(blobs))
	for _, b := range blobs {
		out = append(out, api.ArtifactInfo{Digest: b.Digest, Size: b.Size})
	}
	writeJSON(w, http.StatusOK, out)
}

// putResult answers PUT /v1/artifacts/{digest}.
type putResult struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Stored bool   `json:"stored"` // false: it was there already, the body was not read
}

// putArtifact streams the body into the store. The auth layer checks the
// body's hash at EOF for large bodies (the client signs the digest itself):
// the store's Put writes it aside and commits it (makes it listed, HEAD 200,
// unpackable, startable) only after a clean EOF and its own hash check. An
// upload beyond --max-artifact is a 413, refused before a byte is read when
// its Content-Length says so; one the disk has no room for (the store keeps
// a reserve free) is a 507.
func (a *Agent) putArtifact(w http.ResponseWriter, r *http.Request) {
	d, err := digestParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	force := r.URL.Query().Get("force") == "1"
	if !force && a.rt.store.Has(d) {
		writeJSON(w, http.StatusOK, putResult{Digest: d, Stored: false})
		return
	}
	// r.ContentLength is -1 for a chunked body: the cap applies as it
	// arrives.
	_, n, err := a.rt.store.PutSize(r.Body, d, r.ContentLength)
	switch {
	case errors.Is(err, artifact.ErrTooLarge):
		a.o.Log.Printf("agent: refused artifact %s: %v", d, err)
		w.Header().Set("Connection", "close") // the rest of the body is not read
		writeError(w, &httpError{status: http.StatusRequestEntityTooLarge, code: api.CodeTooLarge, err: fmt.Errorf("put artifact %s: nothing stored: %w", d, err)})
		return
	case errors.Is(err, artifact.ErrNoSpace):
		a.o.Log.Printf("agent: refused artifact %s: %v", d, err)
		w.Header().Set("Connection", "close")
		writeError(w, &httpError{status: http.StatusInsufficientStorage, code: api.CodeNoSpace, err: fmt.Errorf("put artifact %s: nothing stored: %w", d, err)})
		return
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		writeError(w, errStatus(http.StatusBadRequest, "put artifact %s: the body was cut short, nothing stored: %w", d, err))
		return
	}
	if errors.Is(err, artifact.ErrDigestMismatch) || errors.Is(err, auth.ErrBadSignature) {
		a.o.Log.Printf("agent: refused artifact %s: %v", d, err)
		writeError(w, &httpError{status: http.StatusBadRequest, code: api.CodeDigestMismatch, err: fmt.Errorf("put artifact %s: content does not match the digest, nothing stored: %w", d, err)})
		return
	}
	if err != nil {
		writeError(w, fmt.Errorf("put artifact %s: %w", d, err))
		return
	}
	if force {
		// A forced re-transfer means the caller distrusts what is here: the
		// unpacked release is rebuilt on the next start, unless it runs.
		a.rt.mu.Lock()
		if a.inUseLocked(d) == "" {
			a.rt.unpackMu.Lock()
			_ = os.RemoveAll(a.releaseDir(d))
			a.rt.unpackMu.Unlock()
		}
		a.rt.mu.Unlock()
	}
	a.o.Log.Printf("agent: stored artifact %s (%d bytes)", d, n)
	writeJSON(w, http.StatusOK, putResult{Digest: d, Size: n, Stored: true})
}

// prepareRelease unpacks the bundle digest (the artifact must be here) so
// that a start only has to exec it; idempotent.
func (a *Agent) prepareRelease(w http.ResponseWriter, r *http.Request) {
	d, err := digestParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if _, herr := a.release(d); herr != nil {
		writeError(w, herr)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"prepared": d})
}

func (a *Agent) removeArtifact(w http.ResponseWriter, r *http.Request) {
	d, err := digestParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	a.rt.mu.Lock()
	defer a.rt.mu.Unlock()
	if id := a.inUseLocked(d); id != "" {
		writeError(w, errStatus(http.StatusConflict, "remove artifact %s: process %s runs from it", d, id))
		return
	}
	a.rt.unpackMu.Lock()
	defer a.rt.unpackMu.Unlock()
	if err := os.RemoveAll(a.releaseDir(d)); err != nil {
		writeError(w, fmt.Errorf("remove artifact %s: %w", d, err))
		return
	}
	if err := a.rt.store.Remove(d); err != nil {
		writeError(w, fmt.Errorf("remove artifact %s: %w", d, err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": d})
}

func (a *Agent) handleStart(w http.ResponseWriter, r *http.Request) {
	var req api.StartRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	info, err := a.startProcess(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (a *Agent) handleSwitch(w http.ResponseWriter, r *http.Request) {
	var req api.SwitchRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	res, err := a.switchTo(req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *Agent) handleStop(w http.ResponseWriter, r *http.Request) {
	var req api.StopRequest
	if r.ContentLength != 0 {
		if err := readJSON(r, &req); err != nil {
			writeError(w, err)
			return
		}
	}
	info, err := a.stopProcess(r.Context(), r.PathValue("id"), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (a *Agent) handleList(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.processes())
}

// handleChecksum recomputes the sha256 of one file of an unpacked release,
// now: it sees what is on disk, not what was unpacked.
func (a *Agent) handleChecksum(w http.ResponseWriter, r *http.Request) {
	d, p := r.URL.Query().Get("digest"), r.URL.Query().Get("path")
	if !artifact.ValidDigest(d) {
		writeError(w, errStatus(http.StatusBadRequest, "checksum: digest %q is not 64 lowercase hex digits", d))
		return
	}
	if !cleanRelative(p) {
		writeError(w, errStatus(http.StatusBadRequest, "checksum: path %q: want a clean relative slash path", p))
		return
	}
	root, err := os.OpenRoot(a.releaseDir(d))
	if errors.Is(err, os.ErrNotExist) {
		writeError(w, errStatus(http.StatusNotFound, "checksum: release %s is not unpacked on this node", d))
		return
	}
	if err != nil {
		writeError(w, fmt.Errorf("checksum: %w", err))
		return
	}
	defer root.Close()
	// Through the root, a link in the release cannot lead outside it.
	f, err := root.Open(filepath.FromSlash(p))
	if errors.Is(err, os.ErrNotExist) {
		writeError(w, errStatus(http.StatusNotFound, "checksum: %s has no file %s", d, p))
		return
	}
	if err != nil {
		writeError(w, errStatus(http.StatusBadRequest, "checksum: %s/%s: %w", d, p, err))
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		writeError(w, errStatus(http.StatusBadRequest, "checksum: %s/%s is not a regular file", d, p))
		return
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		writeError(w, fmt.Errorf("checksum: %s/%s: %w", d, p, err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"sha256": hex.EncodeToString(h.Sum(nil))})
}
