package controlplane

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/workflows"
	enumspb "go.temporal.io/api/enums/v1"
)

// Status is `dflow status`: the whole cluster on one screen.
type Status struct {
	Cluster      string            `json:"cluster"`
	ControlPlane ControlPlaneState `json:"control_plane"`
	// Current is the release that serves now; Previous is where a
	// rollback goes (nil when there is none).
	Current  *ReleaseSummary `json:"current,omitempty"`
	Previous *ReleaseSummary `json:"previous,omitempty"`
	Count    int             `json:"count"` // the desired node count
	Nodes    []NodeStatus    `json:"nodes"`
	// Operation is the operation that holds the cluster lock, if any.
	Operation *Operation `json:"operation,omitempty"`
	// Watchers are the running repair --watch, chaos-monkey --rampage and
	// verify --watch.
	Watchers  []Operation `json:"watchers"`
	Schedules []Schedule  `json:"schedules"`
}

// ReleaseSummary is a release on `dflow status`.
type ReleaseSummary struct {
	ID      int       `json:"id"`
	Kind    string    `json:"kind"`
	Version string    `json:"version"`
	Digest  string    `json:"digest"`
	Who     string    `json:"who"`
	At      time.Time `json:"at"`
	Outcome string    `json:"outcome"`
}

func summary(r deploy.Release) *ReleaseSummary {
	return &ReleaseSummary{ID: r.ID, Kind: r.Kind, Version: r.Version, Digest: r.Digest, Who: r.Who, At: r.At, Outcome: r.Outcome}
}

// ControlPlaneState is where the control plane is and who works for it.
type ControlPlaneState struct {
	// Embedded: this project's own control plane (else a team's Temporal).
	Embedded bool   `json:"embedded"`
	Running  bool   `json:"running"`
	Address  string `json:"address,omitempty"`
	UI       string `json:"ui,omitempty"`
	PID      int    `json:"pid,omitempty"`
	// TaskQueue and the workers polling it (none: nothing runs the
	// cluster's workflows).
	TaskQueue string   `json:"task_queue"`
	Workers   []Worker `json:"workers"`
	// Error says why the control plane could not be asked.
	Error string `json:"error,omitempty"`
}

// Worker is a worker polling the cluster's task queue.
type Worker struct {
	Identity string    `json:"identity"`
	LastSeen time.Time `json:"last_seen"`
}

// NodeStatus is one node on `dflow status`.
type NodeStatus struct {
	Index   int    `json:"index"`
	Address string `json:"address"`
	State   string `json:"state"` // a NodeRow state
	// Serving is the version behind the node's public port ("" none).
	Serving string `json:"serving,omitempty"`
	// Health and Threshold are the newest verify verdict, at Checked.
	Health    *float64  `json:"health,omitempty"`
	Threshold *float64  `json:"threshold,omitempty"`
	Checked   time.Time `json:"checked,omitzero"`
	// LastSeen is when its agent last answered (now, when it answers).
	LastSeen time.Time `json:"last_seen,omitzero"`
	Error    string    `json:"error,omitempty"`
}

// Operation is a running workflow of the cluster.
type Operation struct {
	ID       string    `json:"id"`
	RunID    string    `json:"run_id"`
	Command  string    `json:"command"`
	Who      string    `json:"who,omitempty"`
	Started  time.Time `json:"started"`
	Progress string    `json:"progress,omitempty"`
	URL      string    `json:"url,omitempty"`
}

// ReadStatus gathers the cluster's status without changing anything: it
// reads the store, asks every node's agent, and, when the control plane
// runs (the embedded one is not started for this), asks it for the
// workers, the running operation, the watchers and the schedules.
func ReadStatus(ctx context.Context, cfg deploy.Config) (Status, error) {
	s := Status{Cluster: cfg.Name, Watchers: []Operation{}, Schedules: []Schedule{}, Nodes: []NodeStatus{}}
	// The control plane is asked beside the nodes; the nodes one after
	// the other (each opens the store, which the embedded one locks).
	var wg sync.WaitGroup
	cps := make(chan ControlPlaneState, 1)
	wg.Go(func() { cps <- controlPlaneStatus(ctx, cfg, &s) })
	rows, err := ListNodes(ctx, cfg)
	var versions []VersionRow
	var st deploy.State
	if err == nil {
		var b *activities.Backends
		versions, b, st, err = nodeVersions(ctx, cfg) // the state comes with them
		if err == nil {
			b.Close()
		}
	}
	wg.Wait()
	s.ControlPlane = <-cps
	if err != nil {
		return s, err
	}
	s.Count = st.Count
	if stack, _ := deploy.Served(st); len(stack) > 0 {
		s.Current = summary(stack[len(stack)-1])
		if len(stack) > 1 {
			s.Previous = summary(stack[len(stack)-2])
		}
	}
	s.Nodes = nodeStatuses(rows, versions, st, time.Now())
	return s, nil
}

// nodeStatuses joins what list, versions and the store's verdicts say of
// every node.
func nodeStatuses(rows []NodeRow, versions []VersionRow, st deploy.State, now time.Time) []NodeStatus {
	serving := map[int]VersionRow{}
	for _, v := range versions {
		serving[v.Index] = v
	}
	newest := map[int]deploy.Verdict{}
	for _, v := range st.Health {
		if v.At.After(newest[v.Index].At) {
			newest[v.Index] = v
		}
	}
	out := []NodeStatus{}
	for _, r := range rows {
		n := NodeStatus{Index: r.Index, Address: r.Address, State: r.State, Serving: serving[r.Index].Serving, Error: r.Error}
		if r.State == NodeRunning || r.State == NodeUnrecorded {
			n.LastSeen = now
		}
		if v, ok := newest[r.Index]; ok {
			n.Health, n.Threshold, n.Checked = &v.Health, &v.Threshold, v.At
			if n.LastSeen.IsZero() && v.Health > 0 {
				n.LastSeen = v.At // its app answered verify then
			}
		}
		out = append(out, n)
	}
	return out
}

// controlPlaneStatus asks the control plane, when it runs, for its workers
// and the cluster's running workflows and schedules (filling s).
func controlPlaneStatus(ctx context.Context, cfg deploy.Config, s *Status) ControlPlaneState {
	cps := ControlPlaneState{Embedded: cfg.Temporal.Address == "", TaskQueue: cfg.Temporal.TaskQueue, Workers: []Worker{}}
	cp := &Client{cfg: cfg, embedded: cps.Embedded}
	if cps.Embedded {
		info, ok, err := ServerStatus(cfg)
		if err != nil || !ok {
			if err != nil {
				cps.Error = err.Error()
			}
			return cps
		}
		cps.Address, cps.UI, cps.PID, cp.info = FrontendString(info), info.UI, info.PID, info
		if err := cp.dialAddr(ctx, info.Frontend); err != nil {
			cps.Error = err.Error()
			return cps
		}
	} else {
		cps.Address = cfg.Temporal.Address
		if err := cp.dialAddr(ctx, cfg.Temporal.Address); err != nil {
			cps.Error = err.Error()
			return cps
		}
	}
	defer cp.Close()
	cps.Running = true
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if d, err := cp.c.DescribeTaskQueue(qctx, cfg.Temporal.TaskQueue, enumspb.TASK_QUEUE_TYPE_ACTIVITY); err == nil {
		for _, p := range d.GetPollers() {
			cps.Workers = append(cps.Workers, Worker{Identity: p.GetIdentity(), LastSeen: p.GetLastAccessTime().AsTime()})
		}
		sort.Slice(cps.Workers, func(a, b int) bool { return cps.Workers[a].Identity < cps.Workers[b].Identity })
	} else {
		cps.Error = fmt.Sprintf("describe task queue %s: %v", cfg.Temporal.TaskQueue, err)
	}
	if op, ok := cp.operation(qctx, workflows.LockID(cfg), true); ok {
		s.Operation = &op
	}
	for _, id := range []string{workflows.RepairWatchID(cfg), workflows.ChaosRampageID(cfg), workflows.VerifyWatchID(cfg)} {
		if op, ok := cp.operation(qctx, id, false); ok {
			s.Watchers = append(s.Watchers, op)
		}
	}
	if sch, err := cp.Schedules(qctx); err == nil {
		s.Schedules = append(s.Schedules, sch...)
	}
	return cps
}

// operation describes workflow id when it runs; with progress, its
// progress line too.
func (cp *Client) operation(ctx context.Context, id string, progress bool) (Operation, bool) {
	d, err := cp.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil { // NotFound: it never ran
		return Operation{}, false
	}
	info := d.GetWorkflowExecutionInfo()
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return Operation{}, false
	}
	busy := cp.describeBusy(ctx, id).(*BusyError)
	op := Operation{ID: id, RunID: info.GetExecution().GetRunId(), Command: busy.Command, Who: busy.Who, Started: info.GetStartTime().AsTime()}
	if op.Command == "?" {
		op.Command = info.GetType().GetName()
	}
	if op.Who == "?" {
		op.Who = ""
	}
	op.URL = cp.WorkflowURL(op.ID, op.RunID)
	if progress {
		if v, err := cp.c.QueryWorkflow(ctx, id, op.RunID, workflows.QueryProgress); err == nil {
			var p deploy.Progress
			if v.Get(&p) == nil {
				op.Progress = statusLine(p, time.Since(op.Started))
			}
		}
	}
	return op, true
}
