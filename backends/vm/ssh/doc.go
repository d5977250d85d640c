// Package ssh is the VM backend that turns existing machines into nodes over
// SSH. Its inventory is a list of hosts ([user@]host[:port], nodes.hosts or a
// nodes.inventory file); the node at index i is the i-th host.
//
// Create logs in (golang.org/x/crypto/ssh, host keys checked against a
// known_hosts file), uploads the dflow executable to
// <RemoteDir>/bin/dflow-<sha256> unless a copy with that hash is there,
// writes the node's authorized_keys and node.json into <RemoteDir>/<index>,
// starts `dflow agent` there detached (its own session and process group,
// output to agent.log), and returns once the agent answers an authenticated
// status call. Destroy stops the agent's process group and removes the node
// directory (the cached executable stays). List asks every host: a host
// that does not answer, or whose agent does not, is not listed.
//
// A create that fails after it made the node (no node was there, or one of
// another image whose agent is dead) stops the agent it started and removes
// the node directory, over a connection of its own (a create cut short by
// its context too); the cached executable stays. Remains reports the hosts
// that hold a node directory, whether or not its agent answers.
//
// Every error names the host and the step: "ssh root@10.0.0.5:22: upload
// dflow: ...".
package ssh
