// Package agent is the dflow node agent: the process that runs on every node
// and answers dflow's authenticated API there. Every request must be signed
// by a key in the node's authorized_keys (package agent/auth); unsigned,
// wrongly signed, expired or replayed requests get 401 and are logged.
//
// The agent holds an flock on <dir>/agent.lock for its whole life, so "is a
// node's agent running" is answered by trying that lock (Running), which also
// sees a killed or zombie agent as gone. Client is the caller's side.
//
// The agent runs the app (DESIGN.md §6). It keeps bundles in a
// content-addressed store at <dir>/artifacts (sha256 checked on arrival),
// unpacks each once into <dir>/releases/<digest>/ (when the control plane
// asks, right after the copy, or else at the first start), gives the
// decoder's memory back to the OS once idle, starts versions with a
// free PORT and their output in <dir>/logs/<id>.log (package agent/process),
// gates them on readiness probes, and owns the node's public port (package
// agent/proxy), which it switches from one version to the next and drains
// before the old one is stopped. The API:
//
//	HEAD   /v1/artifacts/{digest}        200 or 404
//	GET    /v1/artifacts                 []ArtifactInfo
//	PUT    /v1/artifacts/{digest}        body: the bundle; ?force=1 re-stores
//	DELETE /v1/artifacts/{digest}        409 while a process runs from it
//	POST   /v1/releases/{digest}         unpack it (idempotent); 404 if not held, 422 if unsafe
//	POST   /v1/processes                 StartRequest -> ProcessInfo, or 422 GateError
//	GET    /v1/processes                 ProcessList
//	POST   /v1/processes/{id}/stop       StopRequest -> ProcessInfo
//	GET    /v1/processes/{id}/log        ?lines=N, text
//	POST   /v1/switch                    SwitchRequest -> SwitchResult
//	GET    /v1/checksum                  ?digest=D&path=P -> {"sha256": ...}
//
// Errors are {"error": "...", "code": "..."} with a fitting status; Client
// turns them into *APIError (or *GateError for a failed start).
package agent
