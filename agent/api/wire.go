package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/artifact"
)

// The types below are the JSON bodies of the agent's API, shared by the
// server (package agent) and Client. Durations travel as Go's
// time.Duration (nanoseconds).

// Status is the answer to GET /v1/status.
type Status struct {
	Index         int       `json:"index"`
	NodeID        string    `json:"node_id"`
	Address       string    `json:"address"`
	AgentVersion  string    `json:"agent_version"`
	PID           int       `json:"pid"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
}

// Process states, in ProcessInfo.State.
const (
	StateStarting = "starting" // started, not yet through its readiness gate
	StateReady    = "ready"    // passed the gate; not receiving public traffic
	StateServing  = "serving"  // the proxy's upstream
	StateDraining = "draining" // being stopped: waiting for its requests in flight
	StateStopped  = "stopped"  // stopped on request
	StateFailed   = "failed"   // did not pass its gate; killed
	StateExited   = "exited"   // exited on its own after it was ready
)

// StartRequest asks the agent to start one version of the app (POST
// /v1/processes). Start is idempotent on ID: an ID names one start attempt.
type StartRequest struct {
	ID      string `json:"id"` // instance id chosen by the caller: [A-Za-z0-9._-], at most 128
	Version string `json:"version"`
	Digest  string `json:"digest"` // the bundle, already in the agent's store
	// Exec is the slash path of the executable inside the bundle: "bin/hello".
	Exec string   `json:"exec"`
	Args []string `json:"args,omitempty"`
	// Env comes on top of PORT, HOST, DFLOW_VERSION and DFLOW_INDEX, which
	// the agent sets and Env may not override: PORT is a free port, HOST
	// the address to bind it on (127.0.0.1 for a process: only the agent's
	// proxy and probes reach it; 0.0.0.0 inside a container, see docker.go).
	Env  map[string]string `json:"env,omitempty"`
	Mode string            `json:"mode,omitempty"` // how to probe: "http" (default) or "tcp"
	// HealthPath is probed in http mode: GET http://127.0.0.1:PORT<HealthPath>;
	// default "/health".
	HealthPath    string        `json:"health_path,omitempty"`
	ReadyProbes   int           `json:"ready_probes,omitempty"`   // consecutive good probes; default 3
	ProbeInterval time.Duration `json:"probe_interval,omitempty"` // default 100ms
	ReadyTimeout  time.Duration `json:"ready_timeout,omitempty"`  // default 30s
	// Image, when set, runs the version as a Docker container of this image
	// (made by the docker container backend: Exec is then the path under
	// /app in the image) instead of as a process of the unpacked bundle.
	// The agent reaches the engine at $DOCKER_HOST or /var/run/docker.sock.
	Image string `json:"image,omitempty"`
	// PublicPort is the node's public port (app.port), which the process
	// must not be given as its PORT: the proxy binds it at the first switch.
	PublicPort int `json:"public_port,omitempty"`
}

// ProcessInfo describes one app process the agent runs or ran.
type ProcessInfo struct {
	ID        string    `json:"id"`
	Version   string    `json:"version"`
	Digest    string    `json:"digest"`
	PID       int       `json:"pid,omitempty"`
	Port      int       `json:"port,omitempty"`
	State     string    `json:"state"`
	StartedAt time.Time `json:"started_at"`
	StoppedAt time.Time `json:"stopped_at,omitzero"`
	Log       string    `json:"log"`             // path of its log file on the node
	Error     string    `json:"error,omitempty"` // why it failed or exited
	// ListenWarning, set once it passed its gate, says that the process
	// listens on its port beyond loopback (it ignored HOST): it can then be
	// reached around the agent's proxy, before its gate and while it
	// drains. Empty when it listens on loopback only (or when the agent
	// could not tell: not Linux, or a container).
	ListenWarning string `json:"listen_warning,omitempty"`
}

// Alive tells whether the process may still run: starting, ready, serving
// or draining (not stopped, failed or exited).
func (p ProcessInfo) Alive() bool {
	switch p.State {
	case StateStarting, StateReady, StateServing, StateDraining:
		return true
	}
	return false
}

// ProcessList is the answer to GET /v1/processes.
type ProcessList struct {
	Serving   string        `json:"serving"`    // instance id behind the public port, or ""
	AppListen string        `json:"app_listen"` // the public port's address, "" before the first switch
	Mode      string        `json:"mode"`       // the proxy's mode, "" before the first switch
	Processes []ProcessInfo `json:"processes"`  // oldest first
}

// SwitchRequest routes the node's public port to a ready instance (POST
// /v1/switch).
type SwitchRequest struct {
	ID      string `json:"id"`
	AppPort int    `json:"app_port"`       // the public port, on the agent's own host
	Mode    string `json:"mode,omitempty"` // "http" (default) or "tcp"
}

// SwitchResult says what the public port served before and serves now.
type SwitchResult struct {
	Previous string `json:"previous"` // instance id, "" if none
	Serving  string `json:"serving"`
}

// StopRequest tunes POST /v1/processes/{id}/stop.
type StopRequest struct {
	// Now skips draining: SIGTERM at once (then Grace, then SIGKILL).
	Now          bool          `json:"now,omitempty"`
	DrainTimeout time.Duration `json:"drain_timeout,omitempty"` // default 30s
	Grace        time.Duration `json:"grace,omitempty"`         // SIGTERM to SIGKILL; default 10s
}

// ArtifactInfo is one blob in the agent's artifact store.
type ArtifactInfo struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// GateError is why a start failed: the new process did not become ready and
// was killed (a 422 answer to POST /v1/processes). The serving version, if
// any, was not touched.
type GateError struct {
	ID      string `json:"id"`
	Probe   string `json:"probe,omitempty"` // what was probed
	Reason  string `json:"reason"`          // exit status, or the last probe error
	LogTail string `json:"log_tail"`        // the last lines of its log
}

func (e *GateError) Error() string {
	s := fmt.Sprintf("process %s did not become ready", e.ID)
	if e.Probe != "" {
		s += " (" + e.Probe + ")"
	}
	s += ": " + e.Reason
	if t := strings.TrimSpace(e.LogTail); t != "" {
		s += "\nlast lines of its log:\n" + t
	}
	return s
}

// APIError is a non-2xx answer from an agent.
type APIError struct {
	Method string
	URL    string
	Status int
	Msg    string // the agent's {"error": ...}, or the body
	// Code is a machine-readable reason the agent may add: "digest_mismatch"
	// (Unwrap then gives artifact.ErrDigestMismatch), "not_found"
	// (artifact.ErrNotFound), "too_large" (artifact.ErrTooLarge, a 413),
	// "no_space" (artifact.ErrNoSpace, a 507).
	Code string

	gate *GateError // a gate failure's details, for StartProcess
}

func (e *APIError) Error() string {
	return fmt.Sprintf("agent %s %s: %d %s: %s", e.Method, e.URL, e.Status, http.StatusText(e.Status), e.Msg)
}

// Permanent tells whether retrying the same request cannot help: a 4xx
// answer (bad input, unknown digest, conflict, too large, refused
// signature) except 408 and 429, and a 507 (the node's disk has no room
// for it: an operator must make some).
func (e *APIError) Permanent() bool {
	return e.Status/100 == 4 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests ||
		e.Status == http.StatusInsufficientStorage
}

// Unwrap maps Code to the sentinel it stands for.
func (e *APIError) Unwrap() error {
	switch e.Code {
	case CodeDigestMismatch:
		return artifact.ErrDigestMismatch
	case CodeNotFound:
		return artifact.ErrNotFound
	case CodeTooLarge:
		return artifact.ErrTooLarge
	case CodeNoSpace:
		return artifact.ErrNoSpace
	}
	return nil
}

// Codes in error answers (ErrorBody.Code, APIError.Code).
const (
	CodeDigestMismatch = "digest_mismatch"
	CodeNotFound       = "not_found"
	CodeTooLarge       = "too_large"
	CodeNoSpace        = "no_space"
)

// ErrorBody is every error answer: {"error": "...", "code": "..."}; a gate
// failure carries the GateError's fields too.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
	*GateError
}
