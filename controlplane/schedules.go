package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/workflows"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// ScheduleCatchup is how late a Schedule may still fire after the control
// plane was down: short, so a restart does not replay missed chaos.
const ScheduleCatchup = time.Minute

// ScheduleOps are the operations a cluster may schedule.
var ScheduleOps = []string{workflows.ScheduledGC, workflows.ScheduledChaos}

// ScheduleID names cfg's cluster's schedule of op.
func ScheduleID(cfg deploy.Config, op string) string {
	return workflows.LockID(cfg) + "-schedule-" + op
}

// Schedule is one of the cluster's Temporal Schedules.
type Schedule struct {
	ID     string    `json:"id"`
	Spec   string    `json:"spec"`
	Next   time.Time `json:"next,omitzero"`
	Action string    `json:"action"`
	Paused bool      `json:"paused,omitempty"`
}

// ErrNoSchedule: the schedule asked for does not exist.
var ErrNoSchedule = errors.New("no such schedule")

// CreateSchedule makes the Schedule that runs op with req at the cron times
// spec (skip a run while the previous one runs; catch up for ScheduleCatchup
// at most); command is what the operator typed, shown by `dflow schedules`.
func (cp *Client) CreateSchedule(ctx context.Context, op, spec, command string, req workflows.ScheduledRequest) (Schedule, error) {
	id := ScheduleID(cp.cfg, op)
	_, err := cp.c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:            id,
		Spec:          client.ScheduleSpec{CronExpressions: []string{spec}},
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: ScheduleCatchup,
		Memo:          map[string]any{"cron": spec, "command": command},
		Action: &client.ScheduleWorkflowAction{
			ID:        workflows.LockID(cp.cfg) + "-scheduled-" + op,
			Workflow:  workflows.Scheduled,
			Args:      []any{req},
			TaskQueue: cp.cfg.Temporal.TaskQueue,
			Memo:      map[string]any{"command": op + " (scheduled)"},
		},
	})
	switch {
	case errors.Is(err, temporal.ErrScheduleAlreadyRunning):
		return Schedule{}, fmt.Errorf("%s --schedule: cluster %s has a %s schedule already (%s): `dflow schedules delete %s` first", op, cp.cfg.Name, op, id, id)
	case err != nil:
		var bad *serviceerror.InvalidArgument
		if errors.As(err, &bad) {
			return Schedule{}, fmt.Errorf("%s --schedule %q: %s", op, spec, bad.Message)
		}
		return Schedule{}, fmt.Errorf("%s --schedule %q: %w", op, spec, err)
	}
	return cp.DescribeSchedule(ctx, id)
}

// DescribeSchedule tells about schedule id; ErrNoSchedule when it is gone.
func (cp *Client) DescribeSchedule(ctx context.Context, id string) (Schedule, error) {
	d, err := cp.c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return Schedule{ID: id}, fmt.Errorf("%w: %s (see `dflow schedules`)", ErrNoSchedule, id)
	}
	if err != nil {
		return Schedule{ID: id}, fmt.Errorf("schedule %s: %w", id, err)
	}
	r := Schedule{ID: id, Paused: d.Schedule.State != nil && d.Schedule.State.Paused}
	dc := converter.GetDefaultDataConverter()
	if p, ok := d.Memo.GetFields()["cron"]; ok {
		_ = dc.FromPayload(p, &r.Spec)
	}
	if p, ok := d.Memo.GetFields()["command"]; ok {
		_ = dc.FromPayload(p, &r.Action)
	}
	if len(d.Info.NextActionTimes) > 0 {
		r.Next = d.Info.NextActionTimes[0]
	}
	return r, nil
}

// Schedules lists the cluster's schedules.
func (cp *Client) Schedules(ctx context.Context) ([]Schedule, error) {
	rows := []Schedule{}
	for _, op := range ScheduleOps {
		r, err := cp.DescribeSchedule(ctx, ScheduleID(cp.cfg, op))
		if errors.Is(err, ErrNoSchedule) {
			continue
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// DeleteSchedule deletes schedule id; ErrNoSchedule when it is gone.
func (cp *Client) DeleteSchedule(ctx context.Context, id string) error {
	err := cp.c.ScheduleClient().GetHandle(ctx, id).Delete(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("%w: %s (see `dflow schedules`)", ErrNoSchedule, id)
	}
	if err != nil {
		return fmt.Errorf("delete schedule %s: %w", id, err)
	}
	return nil
}

// TriggerSchedule runs schedule id's action now and returns the run it
// started (id and first run id), once it shows among the schedule's recent
// actions (within 30 s).
func (cp *Client) TriggerSchedule(ctx context.Context, id string) (string, string, error) {
	h := cp.c.ScheduleClient().GetHandle(ctx, id)
	before, err := h.Describe(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return "", "", fmt.Errorf("%w: %s (see `dflow schedules`)", ErrNoSchedule, id)
	}
	if err != nil {
		return "", "", fmt.Errorf("schedule %s: %w", id, err)
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		return "", "", fmt.Errorf("trigger schedule %s: %w", id, err)
	}
	// The run shows up among the schedule's recent actions.
	seen := len(before.Info.RecentActions)
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := h.Describe(ctx)
		if err != nil {
			return "", "", fmt.Errorf("schedule %s: %w", id, err)
		}
		if n := len(d.Info.RecentActions); n > seen || n == 10 && !sameAction(d.Info.RecentActions[n-1], before.Info.RecentActions) {
			run := d.Info.RecentActions[n-1].StartWorkflowResult
			return run.WorkflowID, run.FirstExecutionRunID, nil
		}
		if time.Now().After(deadline) {
			return "", "", fmt.Errorf("trigger schedule %s: the run did not start within 30s (does the control plane's worker run?)", id)
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// sameAction tells whether a is among the recent actions before.
func sameAction(a client.ScheduleActionResult, before []client.ScheduleActionResult) bool {
	for _, b := range before {
		if b.StartWorkflowResult != nil && a.StartWorkflowResult != nil && b.StartWorkflowResult.WorkflowID == a.StartWorkflowResult.WorkflowID {
			return true
		}
	}
	return false
}

// ScheduleIDOf resolves what an operator names a schedule by ("gc",
// "chaos-monkey" or a full ID) to the ID of cfg's cluster's schedule; an ID
// of another cluster is an error.
func ScheduleIDOf(cfg deploy.Config, arg string) (string, error) {
	for _, op := range ScheduleOps {
		if arg == op {
			return ScheduleID(cfg, op), nil
		}
	}
	if !strings.HasPrefix(arg, workflows.LockID(cfg)+"-schedule-") {
		return "", fmt.Errorf("%q is not a schedule of cluster %s (see `dflow schedules`)", arg, cfg.Name)
	}
	return arg, nil
}

// CommandLine is args as an operator would type them again (quoted where
// a shell needs it), for a schedule's description.
func CommandLine(args []string) string {
	out := "dflow"
	for _, a := range args {
		if strings.ContainsAny(a, " *?\"'") {
			a = strconv.Quote(a)
		}
		out += " " + a
	}
	return out
}

// ListSchedules connects to cfg's control plane (see Connect) and lists
// the cluster's schedules.
func ListSchedules(ctx context.Context, cfg deploy.Config) ([]Schedule, error) {
	cp, err := Connect(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	defer cp.Close()
	return cp.Schedules(ctx)
}

// RunSchedule runs schedule id's action now (see TriggerSchedule) and
// follows the run to its end (progress on w) into result.
func (cp *Client) RunSchedule(ctx context.Context, id string, result any, w io.Writer) error {
	wid, runID, err := cp.TriggerSchedule(ctx, id)
	if err != nil {
		return fmt.Errorf("schedules trigger: %w", err)
	}
	return cp.Follow(ctx, "schedule "+id, wid, runID, result, w)
}
