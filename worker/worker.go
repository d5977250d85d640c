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
	r.RegisterWorkflow(workflows.Provision)
	r.RegisterWorkflow(workflows.Deploy)
	r.RegisterWorkflow(workflows.Build)
	r.RegisterWorkflow(workflows.Copy)
	r.RegisterWorkflow(workflows.Stop)
	r.RegisterWorkflow(workflows.Repair)
	r.RegisterWorkflow(workflows.RepairWatch)
	r.RegisterWorkflow(workflows.Chaos)
	r.RegisterWorkflow(workflows.ChaosRampage)
	r.RegisterWorkflow(workflows.GC)
	r.RegisterWorkflow(workflows.Scheduled)
	r.RegisterWorkflow(workflows.VerifyWatch)
	r.RegisterActivity(a)
}

// New returns a worker for taskQueue serving dflow with backends from env.
func New(c client.Client, taskQueue string, env Env) sdkworker.Worker {
	w := sdkworker.New(c, taskQueue, sdkworker.Options{})
	Register(w, &activities.Activities{Open: Opener(env), OpenStore: func(ctx context.Context, cfg deploy.Config) (backends.Store, error) { return OpenStore(cfg) }})
	return w
}
