// Command bench measures dflow on this machine: it prints a table per
// benchmark (each figure beside its target, measured value first), writes
// the figures as JSON to -out and draws PNG plots into -plots. It drives the
// real dflow binary ($DFLOW_BIN, or -dflow) in temporary projects, as an
// operator would, and sends traffic only to 127.0.0.0/8.
//
// Benchmarks (-only picks some, comma-separated):
//
//   - provision: control plane cold and warm start, `set N` and `set 0`
//     for growing N, recreating one node.
//   - proxy: the agent's reverse proxy (agent/proxy, in-process) against
//     the same load sent straight to the upstream, for a trivial handler and
//     a 1 ms handler: throughput ratio and added p50/p99 latency.
//   - zerodowntime: examples/hello built by GHC through `dflow deploy` on 5
//     local nodes, a fixed-rate non-retrying load (vegeta, POST) across the
//     5 app URLs, and deploy/rollback cycles: failed requests and latency,
//     overall and within the cutover windows.
//   - rollout: wall time of a deploy to N local nodes and its phases from
//     the workflow's history, the control plane's overhead per node step,
//     a 100-node rollout with deploy.parallel 25, agent memory when idle.
//   - copy: a 100 MB bundle to N nodes under a per-node bandwidth cap,
//     against the star bound N*S/B and the ideal S/B.
//
// Run everything with `make bench`, one benchmark with
// `go run ./bench -only proxy` (DFLOW_BIN set, or -dflow). docs/BENCHMARKS.md
// has the figures measured on the reference machine.
package main
