// Package process starts, gates and stops the app versions an agent runs.
//
// Start runs one version in its own process group, with a minimal
// environment and its output appended to a log file, and arranges for the
// kernel to kill it if the agent dies (Pdeathsig), so a kill -9 of the agent
// leaves no orphan behind. Gate waits until the new version answers its
// readiness probe a number of times in a row, and fails fast when it exits.
// Stop sends SIGTERM to the group, waits a grace period, then SIGKILLs it.
package process
