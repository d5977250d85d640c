package workflows

import (
	"fmt"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// QueryProgress is the query that returns a workflow's deploy.Progress.
const QueryProgress = "progress"

// acts is how workflows name activities (method values on a nil receiver).
var acts *activities.Activities

// tracker keeps a workflow's progress and publishes it.
type tracker struct {
	p deploy.Progress
}

func newTracker(ctx workflow.Context, op string) (*tracker, error) {
	t := &tracker{p: deploy.Progress{Op: op}}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (deploy.Progress, error) {
		return t.p, nil
	}); err != nil {
		return nil, fmt.Errorf("register progress query: %w", err)
	}
	return t, nil
}

// newWatchTracker is newTracker for a watch loop: it carries on the
// progress of the run it continues as new, and refuses an interval that is
// not positive (op names the loop in that error).
func newWatchTracker(ctx workflow.Context, op string, carried *deploy.Progress, interval time.Duration) (*tracker, error) {
	t, err := newTracker(ctx, op)
	if err != nil {
		return nil, err
	}
	if carried != nil {
		t.p = *carried
	}
	if interval <= 0 {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: interval %s is not positive", op, interval), activities.ErrBadInput, nil)
	}
	return t, nil
}

// step starts a new step of total units of work.
func (t *tracker) step(ctx workflow.Context, step string, total int) {
	t.p.Step, t.p.Done, t.p.Total = step, 0, total
	t.publish(ctx)
}

// done counts one unit of the current step as finished.
func (t *tracker) done(ctx workflow.Context) {
	t.p.Done++
	t.publish(ctx)
}

// event records a line of progress about node (-1: the cluster).
func (t *tracker) event(ctx workflow.Context, node int, format string, args ...any) {
	t.p.Add(workflow.Now(ctx), node, fmt.Sprintf(format, args...))
	t.publish(ctx)
}

func (t *tracker) publish(ctx workflow.Context) {
	d := fmt.Sprintf("**%s**: %s", t.p.Op, t.p.Step)
	if t.p.Total > 0 {
		d += fmt.Sprintf(" (%d/%d)", t.p.Done, t.p.Total)
	}
	if t.p.Paused {
		d += " **PAUSED**: `dflow deploy resume` (or the Update resume) goes on"
	}
	for _, s := range t.p.Stuck {
		d += "\n\n**STUCK** " + strings.TrimPrefix(stuckText(s), "stuck: ")
	}
	if n := len(t.p.Events); n > 0 {
		d += "\n\n" + t.p.Events[n-1].Msg
	}
	workflow.SetCurrentDetails(ctx, d)
}
