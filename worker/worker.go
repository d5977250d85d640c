package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/workflows"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
)

// Register registers every dflow workflow and the activities on r.
func Register(r sdkworker.Registry, a *activities.Activities) {
	workflows.Register(r)
	r.RegisterActivity(a)
}

// New returns a worker for taskQueue serving dflow with backends from env.
func New(c client.Client, taskQueue string, env Env) sdkworker.Worker {
	w := sdkworker.New(c, taskQueue, sdkworker.Options{})
	Register(w, &activities.Activities{Open: Opener(env), OpenStore: func(ctx context.Context, cfg deploy.Config) (backends.Store, error) { return OpenStore(cfg) }})
	return w
}

// Run serves cfg's task queue on the Temporal at cfg.Temporal.Address
// until ctx ends: `dflow worker`, for workers beside a team's Temporal
// (the embedded control plane runs its own).
func Run(ctx context.Context, cfg deploy.Config, out io.Writer) error {
	if cfg.Temporal.Address == "" {
		return errors.New("worker: no Temporal address: give --temporal HOST:PORT, TEMPORAL_ADDRESS or temporal.address in dflow.yaml (the embedded control plane runs its own worker)")
	}
	c, err := client.DialContext(ctx, client.Options{HostPort: cfg.Temporal.Address, Namespace: cfg.Temporal.Namespace, Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		return fmt.Errorf("worker: connect to Temporal at %s (%s): %w", cfg.Temporal.Address, cfg.Where("temporal.address"), err)
	}
	defer c.Close()
	w := New(c, cfg.Temporal.TaskQueue, Env{})
	if err := w.Start(); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	defer w.Stop()
	fmt.Fprintf(out, "dflow worker on %s, namespace %s, task queue %s\n", cfg.Temporal.Address, cfg.Temporal.Namespace, cfg.Temporal.TaskQueue)
	<-ctx.Done()
	return nil
}
