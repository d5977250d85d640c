package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/distributive-flow/dflow/workflows"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// AlreadyRunningError: a watch loop of this kind runs on the cluster
// already (the CLI's exit code 75).
type AlreadyRunningError struct {
	Label, Cluster, ID, StopHint string
}

func (e *AlreadyRunningError) Error() string {
	return fmt.Sprintf("%s runs already on cluster %s (workflow %s): `dflow follow` is for the cluster lock; %s ends it", e.Label, e.Cluster, e.ID, e.StopHint)
}

// ErrNotRunning: the workflow asked for does not run.
var ErrNotRunning = errors.New("not running")

// searchAttributes tags a workflow with its cluster where the embedded
// control plane has the attribute.
func (cp *Client) searchAttributes() temporal.SearchAttributes {
	if !cp.embedded {
		return temporal.SearchAttributes{}
	}
	return temporal.NewSearchAttributes(temporal.NewSearchAttributeKeyKeyword("DflowCluster").ValueSet(cp.cfg.Name))
}

// StartLoop starts a watcher workflow (repair --watch, chaos-monkey
// --rampage) under its own ID id (not the cluster lock: it takes the lock
// for each round). A second one of the same ID is an *AlreadyRunningError.
func (cp *Client) StartLoop(ctx context.Context, id, label, stopHint string, wf any, req any) error {
	opts := client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                cp.cfg.Temporal.TaskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		Memo:                                     map[string]any{"command": label, "who": WhoAmI()},
		TypedSearchAttributes:                    cp.searchAttributes(),
	}
	_, err := cp.c.ExecuteWorkflow(ctx, opts, wf, req)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return &AlreadyRunningError{Label: label, Cluster: cp.cfg.Name, ID: id, StopHint: stopHint}
	}
	if err != nil {
		return fmt.Errorf("start %s: %w", label, err)
	}
	return nil
}

// StartOrJoin starts workflow wf under id, or joins the one that runs under
// it (verify --watch), and returns its run.
func (cp *Client) StartOrJoin(ctx context.Context, id string, wf any, req any) (client.WorkflowRun, error) {
	return cp.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: cp.cfg.Temporal.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, wf, req)
}

// Stop cancels the workflow id (its newest run); ErrNotRunning when there is
// none.
func (cp *Client) Stop(ctx context.Context, id string) error {
	err := cp.c.CancelWorkflow(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return ErrNotRunning
	}
	return err
}

// Update sends Update name (pause, resume, abort, retry: arg is who asks;
// skip-node: a workflows.SkipNode) to the cluster's running operation and
// returns its id; the workflow's validator refuses what makes no sense, in
// dflow's words.
func (cp *Client) Update(ctx context.Context, name string, arg any) (string, error) {
	id, runID, running, err := cp.RunningOp(ctx)
	if err != nil {
		return "", err
	}
	if !running {
		return "", fmt.Errorf("cluster %s runs no operation", cp.cfg.Name)
	}
	h, err := cp.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, RunID: runID, UpdateName: name, Args: []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		var out string
		err = h.Get(ctx, &out)
	}
	if err != nil {
		return id, Explain(err)
	}
	return id, nil
}

// LockID is the workflow ID of the cluster's mutating operations.
func (cp *Client) LockID() string { return workflows.LockID(cp.cfg) }

// Run starts a cluster-changing workflow wf with req under the cluster lock
// (waiting for the lock when wait, else BusyError), follows it to its end
// with progress on Stderr and stores its result in result.
func (cp *Client) Run(ctx context.Context, command string, wait bool, wf, req, result any) error {
	run, err := cp.StartMutating(ctx, command, wait, wf, req)
	if err != nil {
		return err
	}
	return cp.Follow(ctx, command, run.GetID(), run.GetRunID(), result, cp.Stderr)
}

// RunLoop starts a watcher workflow (repair --watch, chaos-monkey
// --rampage) under its own id, not the cluster lock (it takes the lock for
// each round), and follows its newest run (it continues as new now and then).
func (cp *Client) RunLoop(ctx context.Context, id, label, stopHint string, wf, req, result any) error {
	if err := cp.StartLoop(ctx, id, label, stopHint, wf, req); err != nil {
		return err
	}
	return cp.Follow(ctx, label, id, "", result, cp.Stderr)
}

// JoinLoop starts the watcher workflow wf under id, or joins the one that
// runs under it (verify --watch), and follows it.
func (cp *Client) JoinLoop(ctx context.Context, id, label string, wf, req any) error {
	run, err := cp.StartOrJoin(ctx, id, wf, req)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	return cp.Follow(ctx, label, run.GetID(), run.GetRunID(), nil, cp.Stderr)
}

// StopLoop asks the watcher workflow id (label: what the operator started,
// "repair --watch") to stop, and says so on Stderr.
func (cp *Client) StopLoop(ctx context.Context, id, label string) error {
	err := cp.Stop(ctx, id)
	if errors.Is(err, ErrNotRunning) {
		return fmt.Errorf("%s does not run on cluster %s", label, cp.cfg.Name)
	}
	if err != nil {
		return fmt.Errorf("stop %s: %w", label, err)
	}
	fmt.Fprintf(cp.Stderr, "asked %s (%s) to stop\n", label, id)
	return nil
}

// FollowRunning follows the cluster's running operation to its end
// (`dflow follow`, progress on w); running is false when there is none.
func (cp *Client) FollowRunning(ctx context.Context, w io.Writer) (running bool, err error) {
	id, runID, running, err := cp.RunningOp(ctx)
	if err != nil || !running {
		return running, err
	}
	return true, cp.Follow(ctx, "follow", id, runID, nil, w)
}
