// Package workflows holds dflow's Temporal workflows, one story per file.
// They are deterministic: no I/O, no wall clock, no goroutines of their own;
// every effect goes through an activity in package activities, and inputs and
// outputs are deploy/ types. Each reports its progress through the
// "progress" query (deploy.Progress) and its current step through
// workflow.SetCurrentDetails, which the Web UI shows. Register registers
// them all.
//
// The files:
//
//   - deploy.go: Deploy (deploy, rollback, restart, start): choose the
//     release, record it, roll it out, record how it ended.
//   - rollout.go: one release's rollout (the rollout struct) and its copy;
//     switch.go: its node turns and batches (schedule, health check);
//     cutover.go: one node's zero-downtime switch; compensate.go: going
//     back after a failed auto-rollout; controls.go: pause, resume, abort.
//   - nodesteps.go: the node-steps-2 versioning decision and both ways of
//     doing node steps (forEach, quick agent calls, work that trails a turn).
//   - ops.go: Build, Copy, Stop. provision.go: Provision (set, cycle,
//     destroy). gc.go: GC and Scheduled.
//   - inspect.go: the read-only inspection that repair.go (Repair) and
//     chaos.go (Chaos) decide from.
//   - watch.go: the one watch loop, which repairwatch.go (RepairWatch),
//     chaos.go (ChaosRampage) and verify.go (VerifyWatch) use.
//   - lock.go: the cluster lock; progress.go: the progress tracker;
//     options.go: activity options; errors.go: how errors read.
//
// Histories recorded on a real server (testdata/, `go test ./worker -run
// OnARealServer -record`) are replayed by TestReplay: a change that would
// break a running workflow fails there.
package workflows
