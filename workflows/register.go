package workflows

// Registry is what dflow's workflows are registered on: a worker
// (go.temporal.io/sdk/worker.Registry), a replayer, the SDK's test
// environment.
type Registry interface {
	RegisterWorkflow(w any)
}

// Register registers every dflow workflow on r: the one list of them, for
// the worker, the replay test and the tests that run workflows.
func Register(r Registry) {
	for _, w := range []any{
		Provision,
		Deploy, Build, Copy, Stop,
		Repair, RepairWatch,
		Chaos, ChaosRampage,
		GC, Scheduled,
		VerifyWatch,
	} {
		r.RegisterWorkflow(w)
	}
}
