// Package agent is the dflow node agent: the process that runs on every node
// and answers dflow's authenticated API there. Every request must be signed
// by a key in the node's authorized_keys (package agent/auth); unsigned,
// wrongly signed, expired or replayed requests get 401 and are logged.
//
// The agent holds an flock on <dir>/agent.lock for its whole life, so "is a
// node's agent running" is answered by trying that lock (Running), which also
// sees a killed or zombie agent as gone. Client is the caller's side.
package agent
