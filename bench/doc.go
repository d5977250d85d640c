// Command bench measures dflow on this machine and prints a table, writing
// the figures as JSON to -out. It drives the real dflow binary ($DFLOW_BIN,
// or -dflow) in a temporary project, as an operator would:
//
//   - control plane: cold start of the embedded Temporal + UI + worker, and
//     a warm restart on the same database;
//   - provisioning: wall time of `set N` for growing N (local nodes), per
//     node, and of `set 0`;
//   - cycle: recreating one node.
//
// Run it with `make bench`.
package main
