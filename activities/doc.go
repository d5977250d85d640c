// Package activities holds dflow's Temporal activities: thin adapters from
// workflow steps to the backends and node agents. They decide what is
// retryable (a node that does not answer yet) and what is not (bad input),
// heartbeat while they wait, and are idempotent so a workflow can resume at
// any point. One struct, Activities, holds how to reach the backends.
package activities
