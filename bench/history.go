package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
)

// actSpan is one activity of a workflow, from its history.
type actSpan struct {
	Type      string    `json:"type"`
	Node      int       `json:"node"` // -1: not about one node
	Scheduled time.Time `json:"scheduled"`
	Started   time.Time `json:"started"`
	Closed    time.Time `json:"closed"`
	OK        bool      `json:"ok"`
	result    *commonpb.Payloads
}

// inside is the time spent inside the activity (its last attempt).
func (a actSpan) inside() time.Duration { return a.Closed.Sub(a.Started) }

// wfHistory is what bench reads from one workflow's history.
type wfHistory struct {
	Start, End time.Time
	Acts       []actSpan
	result     *commonpb.Payloads // the workflow's result, when it completed
}

// decodeResult decodes the workflow's result into v.
func (h wfHistory) decodeResult(v any) error {
	return decodeFirst(h.result, v, "the workflow")
}

// decodeFirst decodes the first payload of ps (what of: for the error) into v.
func decodeFirst(ps *commonpb.Payloads, v any, of string) error {
	if ps == nil || len(ps.GetPayloads()) == 0 {
		return fmt.Errorf("%s: no result", of)
	}
	return converter.GetDefaultDataConverter().FromPayload(ps.GetPayloads()[0], v)
}

// history reads the activities of workflow ("ID/run ID") from the control plane.
func history(c client.Client, workflow string) wfHistory {
	i := strings.LastIndex(workflow, "/")
	if i < 0 {
		abort(fmt.Errorf("workflow %q: want ID/run ID", workflow))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	it := c.GetWorkflowHistory(ctx, workflow[:i], workflow[i+1:], false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var h wfHistory
	byID := map[int64]*actSpan{}
	var order []int64
	dc := converter.GetDefaultDataConverter()
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			abort(fmt.Errorf("history of %s: %w", workflow, err))
		}
		at := ev.GetEventTime().AsTime()
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			h.Start = at
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			h.End, h.result = at, ev.GetWorkflowExecutionCompletedEventAttributes().GetResult()
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
			h.End = at
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			a := ev.GetActivityTaskScheduledEventAttributes()
			s := &actSpan{Type: a.GetActivityType().GetName(), Node: -1, Scheduled: at}
			if ps := a.GetInput().GetPayloads(); len(ps) > 1 {
				var n struct {
					Index *int `json:"index"`
				}
				if err := dc.FromPayload(ps[1], &n); err == nil && n.Index != nil {
					s.Node = *n.Index
				}
			}
			byID[ev.GetEventId()] = s
			order = append(order, ev.GetEventId())
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if s := byID[ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()]; s != nil {
				s.Started = at
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			a := ev.GetActivityTaskCompletedEventAttributes()
			if s := byID[a.GetScheduledEventId()]; s != nil {
				s.Closed, s.OK, s.result = at, true, a.GetResult()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			if s := byID[ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId()]; s != nil {
				s.Closed = at
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			if s := byID[ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId()]; s != nil {
				s.Closed = at
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			if s := byID[ev.GetActivityTaskCanceledEventAttributes().GetScheduledEventId()]; s != nil {
				s.Closed = at
			}
		}
	}
	for _, id := range order {
		h.Acts = append(h.Acts, *byID[id])
	}
	return h
}

// decodeResult decodes an activity's result into v.
func (a actSpan) decodeResult(v any) error {
	return decodeFirst(a.result, v, "activity "+a.Type)
}

// window is a time interval.
type window struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	Node int       `json:"node"` // -1: every node
}

// cutovers are, per node, the time from the start activity's scheduling to
// the end of the last stop of the old version: start of the new version
// beside the old, readiness gate, switch, drain and stop of the old.
func (h wfHistory) cutovers() []window {
	var ws []window
	byNode := map[int]int{} // node -> index in ws
	for _, a := range h.Acts {
		switch a.Type {
		case "StartOnNode":
			byNode[a.Node] = len(ws)
			ws = append(ws, window{From: a.Scheduled, To: a.Closed, Node: a.Node})
		case "SwitchOnNode", "StopOnNode":
			if i, ok := byNode[a.Node]; ok && a.Closed.After(ws[i].To) {
				ws[i].To = a.Closed
			}
		}
	}
	return ws
}
