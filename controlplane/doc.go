// Package controlplane is the client the CLI, the tests and the benchmarks
// use for everything that talks to Temporal: connecting (dialing a team's
// Temporal, or starting this project's embedded control plane), recording
// the configuration revision a workflow will use, starting mutating
// workflows under the cluster lock (BusyError when it is held), following a
// workflow's progress (Ctrl-C detaches: ErrDetached), the watch loops,
// Updates (pause, resume, abort), schedules, and turning workflow and
// activity failures into dflow's own words (Explain) and exit statuses
// (ExitCode). Beside the client: checks that refuse bad input before
// anything starts (CheckDeploy, Validate), reads of the cluster's state,
// and deploy --watch (WatchSources). The commands in cmd/dflow bind
// flags, build requests, call this and print.
package controlplane
