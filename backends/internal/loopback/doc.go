// Package loopback hands out loopback addresses (127.0.0.2, 127.0.0.3, ...)
// to nodes that live on this machine, one per (project, node index), from a
// machine-wide registry under MachineDir()/loopback/: the local and vagrant
// VM backends claim their nodes' addresses here, so no two nodes of any
// project on one machine ever share one. Claims of projects whose .dflow
// directory is gone are reclaimed.
package loopback
