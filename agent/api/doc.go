// Package api is the node agent's side that callers need: the JSON wire
// types of its HTTP API (StartRequest, ProcessInfo, ProcessList, ...), the
// error codes and error types its answers carry (APIError, GateError), and
// Client, which signs every request for one node (package agent/auth).
// AnswersAs and WaitReady wait for an agent to answer as a given node.
//
// It is kept small on purpose: workflows and activities import it, and
// not the agent's server (package agent), which runs processes, the proxy
// and the artifact store. The API's routes are listed in package agent's
// documentation.
package api
