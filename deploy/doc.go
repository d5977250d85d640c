// Package deploy is dflow's domain model in pure Go: the vocabulary shared by
// the CLI, the workflows, the activities and the backends (Node, State,
// TargetDesc, ...), the dflow.yaml Config with its defaults and line-numbered
// validation, and the planning math (which nodes to create or destroy, rollout
// batches, health tolerance). Nothing here does I/O beyond reading a config
// file, so it is safe to use from Temporal workflows.
package deploy
