// Package workflows holds dflow's Temporal workflows, one file per workflow.
// They are deterministic: no I/O, no wall clock, no goroutines of their own;
// every effect goes through an activity in package activities, and inputs and
// outputs are deploy/ types. Each reports its progress through the
// "progress" query (deploy.Progress) and its current step through
// workflow.SetCurrentDetails, which the Web UI shows.
package workflows
