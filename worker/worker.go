package worker

import (
	"context"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/workflows"
	"go.temporal.io/sdk/client"
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
