// Package local is the VM backend that makes nodes on this machine: each node
// is a detached `dflow agent` process (it outlives the CLI and the control
// plane) with its own directory .dflow/nodes/<index>/ and its own loopback
// address (127.0.0.2, 127.0.0.3, ...), so nodes look like separate hosts.
//
// Addresses are claimed in a machine-wide registry (MachineDir/loopback/,
// backends/internal/loopback, which the vagrant backend shares), so
// several projects on one machine never share an address. A node index keeps
// its address for the life of its project, across cycle and destroy; claims
// of projects whose .dflow directory is gone are reclaimed.
//
// A create that fails removes what it made: the node's directory and agent,
// and the address when it claimed it then (a node index that had one keeps
// it). A dead node of another image than asked is made anew rather than
// started again. Remains reports every node directory, running or not.
package local
