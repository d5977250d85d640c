// Package devserver is dflow's embedded control plane: a Temporal server on a
// SQLite file (WAL, tuned for one laptop) plus the Temporal Web UI, in the
// calling process. One process owns the database file at a time (an flock on
// a lock file beside it); a restart on the same directory keeps every
// workflow's history.
//
// It also manages the control plane as a background process for the CLI:
// Info (the server.json record of a running one), Status, StartBackground and
// StopBackground.
package devserver
