// Package worker builds the backends a configuration names, from one explicit
// table (no init() registration), and runs Temporal workers that serve dflow's
// workflows and activities. worker/devserver is the embedded control plane.
package worker
