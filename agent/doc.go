// Package agent is the dflow node agent: the process that runs on every node
// and answers dflow's authenticated API there. Every request must be signed
// by a key in the node's authorized_keys for this node's ID (--node-id,
// required: deploy.Node.ID, one per incarnation of a node; package
// agent/auth, scheme DFLOW2); unsigned, wrongly signed, expired, replayed
// requests and requests signed for another node get 401 and are logged. A
// request signed before this agent process started is refused too, so a
// restart does not open a window for replays. The agent acts only on the
// exact bytes that were signed: a JSON body is read whole (at most 1 MiB:
// 413 beyond, also when it comes chunked), checked, and must hold exactly
// one JSON value (400 for trailing data or a second value; 400 for a body
// cut short). Only an artifact upload streams: it is written aside and
// becomes visible (listed, HEAD 200, unpackable, startable) only once all of
// it arrived and its hash checked. An upload beyond --max-artifact (default
// 4 GiB) is a 413, refused before a byte is read when its Content-Length
// says so; one that would leave the disk with less than the artifact
// store's reserve free is a 507 naming the directory and the numbers.
// Request headers are capped at 64 KiB (431).
//
// The agent holds an flock on <dir>/agent.lock for its whole life, so "is a
// node's agent running" is answered by trying that lock (Running), which also
// sees a killed or zombie agent as gone. Package agent/api is the caller's
// side: the wire types below and Client.
//
// The agent runs the app (DESIGN.md §6). It keeps bundles in a
// content-addressed store at <dir>/artifacts (sha256 checked on arrival),
// unpacks each once into <dir>/releases/<digest>/ (when the control plane
// asks, right after the copy, or else at the first start), gives the
// decoder's memory back to the OS once idle, starts versions with a
// free PORT, HOST=127.0.0.1 (so that only the proxy reaches them; a
// container gets 0.0.0.0 of its own network namespace, see docker.go) and
// their output in <dir>/logs/<id>.log (package agent/process), gates them
// on readiness probes, then checks where the version listens (Linux:
// /proc/net/tcp and tcp6) and records api.ProcessInfo.ListenWarning when it
// listens beyond loopback, and owns the node's public port (package
// agent/proxy), which it switches from one version to the next and drains
// before the old one is stopped. The API:
//
//	HEAD   /v1/artifacts/{digest}        200 or 404
//	GET    /v1/artifacts                 []ArtifactInfo
//	PUT    /v1/artifacts/{digest}        body: the bundle (streamed); ?force=1 re-stores; 413, 507
//	DELETE /v1/artifacts/{digest}        409 while a process runs from it
//	POST   /v1/releases/{digest}         unpack it (idempotent); 404 if not held, 422 if unsafe
//	POST   /v1/processes                 StartRequest -> ProcessInfo, or 422 GateError
//	GET    /v1/processes                 ProcessList
//	POST   /v1/processes/{id}/stop       StopRequest -> ProcessInfo
//	GET    /v1/processes/{id}/log        ?lines=N|all&since=T&follow=1, text (streamed)
//	GET    /v1/agent/log                 the agent's own log, likewise
//	POST   /v1/switch                    SwitchRequest -> SwitchResult
//	GET    /v1/checksum                  ?digest=D&path=P -> {"sha256": ...}
//
// Logs (logs.go): an instance's output and the agent's own log are each
// rotated beyond --log-max-size (default 10 MiB; one previous part is
// kept), and served by id only: no request names a path.
//
// The bodies are package agent/api's types. Errors are {"error": "...",
// "code": "..."} (api.ErrorBody) with a fitting status; api.Client turns
// them into *api.APIError (or *api.GateError for a failed start).
package agent
