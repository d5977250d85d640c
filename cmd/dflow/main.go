// Command dflow deploys Haskell applications to a cluster of nodes with zero
// downtime. Every command that changes the cluster runs as a durable Temporal
// workflow; see `dflow --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/report"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		report.Failure(os.Stderr, err, g.verbose)
		os.Exit(controlplane.ExitCode(err))
	}
}

// exit is an error that asks for exit status code; an empty err says
// nothing more (the command has told it).
func exit(code int, err error) error { return &controlplane.ExitError{Code: code, Err: err} }
