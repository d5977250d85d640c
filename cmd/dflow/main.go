// Command dflow deploys Haskell applications to a cluster of nodes with zero
// downtime. Every command that changes the cluster runs as a durable Temporal
// workflow; see `dflow --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
)

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	// Follow has said how to follow again; an empty exitError has said
	// what it had to: nothing more to print.
	var ee *exitError
	var op *controlplane.OpError
	switch {
	case errors.Is(err, controlplane.ErrDetached):
	case g.verbose && errors.As(err, &op):
		fmt.Fprintln(os.Stderr, "dflow:", op.Verbose())
	case !errors.As(err, &ee) || ee.err != nil && ee.err.Error() != "":
		fmt.Fprintln(os.Stderr, "dflow:", err)
	}
	os.Exit(exitCode(err))
}

// connect records cfg's configuration revision in the Store and connects to
// the cluster's control plane (starting the embedded one when it is used).
func connect(ctx context.Context, cfg *deploy.Config) (*controlplane.Client, error) {
	asJSON, err := jsonOutput()
	if err != nil {
		return nil, err
	}
	cp, err := controlplane.Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cp.ProgressJSON = asJSON
	return cp, nil
}

// exitCode is the exit status err asks for (docs/operations.md, "Exit
// codes"): 2 for bad input, 4 when an operator (or deploy.stuck_action)
// aborted the operation, 75 when the cluster is busy, 0 when the operator
// stopped following (Ctrl-C: the operation goes on), else 1.
func exitCode(err error) int {
	var ee *exitError
	var busy *controlplane.BusyError
	var running *controlplane.AlreadyRunningError
	var input *controlplane.InputError
	var op *controlplane.OpError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &input), errors.As(err, &op) && op.BadInput():
		return 2
	case errors.As(err, &op) && op.Aborted():
		return 4
	case errors.As(err, &busy), errors.As(err, &running):
		return 75
	case errors.Is(err, controlplane.ErrDetached):
		return 0
	}
	return 1
}
