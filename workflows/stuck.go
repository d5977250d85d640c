package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/deploy"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// A stuck node step pauses a deploy, it does not fail it. A node step
// (list, copy, start, stop, switch) whose activity exhausted its retries
// for a reason that waiting may fix (the node's agent unreachable, a
// transport error, a copy cut off, a timed-out attempt) waits for an
// operator's decision: the Updates retry (run the step again), skip-node
// (leave that node out of this rollout and go on; `dflow repair` brings
// it up later) or abort (stop, and undo what switched). Unattended, the
// pause ends after deploy.stuck_timeout with deploy.stuck_action.
//
// What is the version's fault or bad input is not stuck and fails as it
// always did: a failed readiness gate (GateFailed), BadInput (a bundle
// the node cannot unpack, one beyond nodes.max_artifact, a node out of
// disk), a failed build or health check, an abort, a cancel.

// changeStuckPause is the workflow change that made stuck node steps of a
// deploy pause instead of failing it. Histories recorded before it replay
// the old way (a stuck step fails the deploy).
const changeStuckPause = "stuck-pause"

// decideStuckPause is the one workflow.GetVersion call for
// changeStuckPause. Deploy calls it right after decideNodeSteps, in the
// same workflow task (see there why that matters), and keeps the answer
// in its rollout (rollout.pauseStuck).
func decideStuckPause(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, changeStuckPause, workflow.DefaultVersion, 1) == 1
}

// Updates a deploy with a stuck node step accepts (beside UpdateAbort).
const (
	// UpdateRetry runs every stuck step again; its argument is who asks.
	UpdateRetry = "retry"
	// UpdateSkipNode leaves the stuck node out of this rollout; its
	// argument is a SkipNode.
	UpdateSkipNode = "skip-node"
)

// SkipNode is the argument of UpdateSkipNode: the stuck node's index and
// who decides. It decodes from {"node": 0, "who": "alice"}, or from a bare
// index (0 or "0"), as typed into the Web UI's Send an Update.
type SkipNode struct {
	Node *int   `json:"node"`
	Who  string `json:"who,omitempty"`
}

// UnmarshalJSON accepts an object, a number or a numeric string.
func (s *SkipNode) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var i int
	if err := json.Unmarshal(b, &i); err == nil {
		s.Node = &i
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		i, err := strconv.Atoi(strings.TrimSpace(str))
		if err != nil {
			return fmt.Errorf("skip-node: %q is not a node index (want e.g. 0 or {\"node\": 0})", str)
		}
		s.Node = &i
		return nil
	}
	type plain SkipNode
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("skip-node: want the stuck node's index, e.g. 0 or {\"node\": 0}: %w", err)
	}
	*s = SkipNode(p)
	return nil
}

// stuckWait is one stuck step waiting for its decision.
type stuckWait struct {
	deploy.StuckStep
	decision, who string
}

// leftOutError is what a node step returns when the operator (or
// deploy.stuck_action) left its node out of the rollout.
type leftOutError struct{ why string }

func (e *leftOutError) Error() string { return e.why }

// leftOut tells whether err left the node out, and why.
func leftOut(err error) (string, bool) {
	var lo *leftOutError
	if errors.As(err, &lo) {
		return lo.why, true
	}
	return "", false
}

// isStuck tells whether a node step's activity error is one that waiting
// and trying again may fix: an activity failure (retries exhausted) that is
// not the version's fault, bad input, an abort or a cancel.
func isStuck(err error) bool {
	if err == nil || temporal.IsCanceledError(err) {
		return false
	}
	var act *temporal.ActivityError
	if !errors.As(err, &act) {
		return false
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		if app.NonRetryable() {
			return false
		}
		switch app.Type() {
		case activities.ErrBadInput, activities.ErrGateFailed, activities.ErrBuildFailed, activities.ErrUnhealthy, ErrAborted:
			return false
		}
	}
	return true
}

// stuckReason is "copy to node 0 failed after 5 attempts: <root cause>".
func stuckReason(step string, node int, err error) string {
	what := fmt.Sprintf("%s on node %d", step, node)
	if step == "copy" {
		what = fmt.Sprintf("copy to node %d", node)
	}
	// Node steps retry stepRetry().MaximumAttempts times; what ends them
	// sooner is their schedule-to-close bound (a local activity's) or a
	// non-retryable error (not stuck). The SDK's test environment leaves
	// the retry state unspecified.
	how := fmt.Sprintf("after %d attempts", stepRetry().MaximumAttempts)
	var act *temporal.ActivityError
	if errors.As(err, &act) && act.RetryState() == enumspb.RETRY_STATE_TIMEOUT {
		how = "after retrying until its deadline"
	}
	return fmt.Sprintf("%s failed %s: %s", what, how, strings.TrimPrefix(rootCause(err), what+": "))
}

// rootCause is the activity's own message (its error chain, which the SDK
// keeps as causes below it, reads in full there), without the SDK's
// wrapping.
func rootCause(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch x := e.(type) {
		case *temporal.ApplicationError:
			return x.Message()
		case *temporal.TimeoutError:
			return "an attempt timed out: " + x.Error()
		}
	}
	return err.Error()
}

// stuckText is what the operator reads about s: in the progress events,
// in the Web UI's current details, and in the CLI's live view.
func stuckText(s deploy.StuckStep) string {
	return fmt.Sprintf("stuck: %s. Decide: dflow deploy retry | dflow deploy skip-node %d | dflow deploy abort (or Send an Update on this workflow's page: %s, %s with %d, %s); unattended, %s at %s (in %s, deploy.stuck_timeout)",
		s.Error, s.Node, UpdateRetry, UpdateSkipNode, s.Node, UpdateAbort, s.Action, s.Deadline.UTC().Format("15:04:05 UTC"), s.Deadline.Sub(s.Since).Round(time.Second))
}

// nodeStep runs one of node's steps (step: list, copy, start, stop,
// switch). When the rollout pauses on stuck steps and the step's activity
// failed stuck, it waits for the decision: retry runs it again, skip-node
// returns a *leftOutError, abort an Aborted error. Any other error is
// returned as it is, for the caller to put in context.
func (r *rollout) nodeStep(ctx workflow.Context, node int, step string, run func(ctx workflow.Context) error) error {
	for {
		err := run(ctx)
		if err == nil || !r.pauseStuck || ctx.Err() != nil || !isStuck(err) {
			return err
		}
		reason := stuckReason(step, node, err)
		decision, who, werr := r.ctl.stuckOn(ctx, node, step, reason, r.cfg.Deploy)
		if werr != nil {
			return err
		}
		switch decision {
		case UpdateRetry:
			r.t.event(ctx, node, "node %d: %s again (retry by %s)", node, step, who)
		case UpdateSkipNode:
			return &leftOutError{why: fmt.Sprintf("%s; left out of this rollout (skip-node by %s): `dflow repair` brings it up on the current release", reason, who)}
		default:
			return abortedError(fmt.Sprintf("by %s: %s", who, reason))
		}
	}
}

// stuckOn records node's stuck step, publishes it and waits until an
// operator decides or cfg.StuckTimeout passes (then cfg.StuckAction
// decides, by "deploy.stuck_action"). It returns the decision (UpdateRetry,
// UpdateSkipNode or UpdateAbort) and who took it; an error only when the
// workflow is cancelled.
func (c *control) stuckOn(ctx workflow.Context, node int, step, reason string, cfg deploy.Rollout) (decision, who string, err error) {
	if c.aborted {
		return UpdateAbort, c.abortedBy, nil
	}
	now := workflow.Now(ctx)
	timeout := cfg.StuckTimeout.D()
	s := &stuckWait{StuckStep: deploy.StuckStep{Node: node, Step: step, Error: reason, Since: now, Deadline: now.Add(timeout), Action: cfg.StuckAction}}
	c.stuck = append(c.stuck, s)
	c.publishStuck()
	c.t.event(ctx, node, "%s", stuckText(s.StuckStep))
	defer func() {
		for i, x := range c.stuck {
			if x == s {
				c.stuck = append(c.stuck[:i:i], c.stuck[i+1:]...)
				break
			}
		}
		c.publishStuck()
		c.t.publish(ctx)
	}()
	// The timer is cancelled once decided, so that the Web UI shows no
	// stale pending timer.
	tctx, cancelTimer := workflow.WithCancel(ctx)
	ok, err := workflow.AwaitWithOptions(tctx, workflow.AwaitOptions{
		Timeout:      timeout,
		TimerOptions: workflow.TimerOptions{Summary: fmt.Sprintf("node %d stuck: %s when nobody decides", node, cfg.StuckAction)},
	}, func() bool { return s.decision != "" || c.aborted })
	cancelTimer()
	switch {
	case err != nil:
		return "", "", err
	case s.decision != "":
		return s.decision, s.who, nil
	case c.aborted:
		return UpdateAbort, c.abortedBy, nil
	case !ok:
		who = "deploy.stuck_action"
		c.t.event(ctx, node, "node %d: nobody decided within %s (deploy.stuck_timeout): %s (deploy.stuck_action)", node, timeout, cfg.StuckAction)
		if cfg.StuckAction == deploy.StuckSkip {
			return UpdateSkipNode, who, nil
		}
		c.aborted, c.abortedBy, c.stuckAbort = true, who, true
		return UpdateAbort, who, nil
	}
	return UpdateAbort, c.abortedBy, nil
}

// publishStuck copies the stuck steps into the progress (the CLI's view
// and the Web UI's current details).
func (c *control) publishStuck() {
	c.t.p.Stuck = nil
	for _, s := range c.stuck {
		c.t.p.Stuck = append(c.t.p.Stuck, s.StuckStep)
	}
}

// registerStuck installs the handlers of the retry and skip-node updates
// (with validators: nothing stuck, or not that node, is refused).
func (c *control) registerStuck(ctx workflow.Context) error {
	// undecided are the stuck steps no decision was taken for yet.
	undecided := func() []*stuckWait {
		var out []*stuckWait
		for _, s := range c.stuck {
			if s.decision == "" {
				out = append(out, s)
			}
		}
		return out
	}
	nothing := func() error {
		if c.aborted {
			return errors.New("the deploy is being aborted already")
		}
		if len(undecided()) == 0 {
			return errors.New("nothing is stuck: retry and skip-node decide about a node step that exhausted its retries (`dflow follow` shows the rollout)")
		}
		return nil
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRetry, func(ctx workflow.Context, who string) (string, error) {
		who = someone(who)
		var nodes []string
		for _, s := range undecided() {
			s.decision, s.who = UpdateRetry, who
			nodes = append(nodes, strconv.Itoa(s.Node))
		}
		c.t.event(ctx, -1, "%s by %s: node %s", UpdateRetry, who, strings.Join(nodes, ", "))
		return "retrying node " + strings.Join(nodes, ", "), nil
	}, workflow.UpdateHandlerOptions{
		Validator:   func(who string) error { return nothing() },
		Description: "Run every stuck node step again. Argument: who asks (a JSON string, may be left out).",
	})
	if err != nil {
		return fmt.Errorf("register update %s: %w", UpdateRetry, err)
	}
	stuckNode := func(arg SkipNode) (*stuckWait, error) {
		if err := nothing(); err != nil {
			return nil, err
		}
		var nodes []string
		for _, s := range undecided() {
			if arg.Node != nil && s.Node == *arg.Node {
				return s, nil
			}
			nodes = append(nodes, strconv.Itoa(s.Node))
		}
		if arg.Node == nil {
			return nil, fmt.Errorf("name the stuck node: skip-node takes its index, e.g. %s or {\"node\": %s}", nodes[0], nodes[0])
		}
		return nil, fmt.Errorf("node %d is not stuck; stuck: node %s", *arg.Node, strings.Join(nodes, ", "))
	}
	err = workflow.SetUpdateHandlerWithOptions(ctx, UpdateSkipNode, func(ctx workflow.Context, arg SkipNode) (string, error) {
		s, err := stuckNode(arg)
		if err != nil {
			return "", err
		}
		s.decision, s.who = UpdateSkipNode, someone(arg.Who)
		c.t.event(ctx, s.Node, "%s %d by %s: node %d is left out of this rollout", UpdateSkipNode, s.Node, s.who, s.Node)
		return fmt.Sprintf("node %d left out", s.Node), nil
	}, workflow.UpdateHandlerOptions{
		Validator:   func(arg SkipNode) error { _, err := stuckNode(arg); return err },
		Description: `Leave the stuck node out of this rollout and go on (dflow repair brings it up later). Argument: its index, e.g. 0, or {"node": 0, "who": "alice"}.`,
	})
	if err != nil {
		return fmt.Errorf("register update %s: %w", UpdateSkipNode, err)
	}
	return nil
}

// someone is who, or says that nobody gave a name (an Update sent from the
// Web UI without an argument).
func someone(who string) string {
	if strings.TrimSpace(who) == "" {
		return "an operator (no name given)"
	}
	return who
}
