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
// Every error names the host and the step: "ssh root@10.0.0.5:22: upload
// dflow: ...".
package ssh
