package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
)

// Status is `dflow status`: the control plane, the releases, the running
// operation, watchers and schedules, then a line per node.
func Status(w io.Writer, s controlplane.Status, now time.Time) error {
	nodes := "nodes"
	if s.Count == 1 {
		nodes = "node"
	}
	tw := table(w, "cluster", fmt.Sprintf("%s (%d %s wanted)", s.Cluster, s.Count, nodes))
	cp := s.ControlPlane
	where := "a Temporal cluster"
	if cp.Embedded {
		where = "embedded"
	}
	switch {
	case cp.Running:
		line := fmt.Sprintf("%s, running: Temporal %s", where, cp.Address)
		if cp.PID > 0 {
			line = fmt.Sprintf("%s, running (pid %d): Temporal %s", where, cp.PID, cp.Address)
		}
		if cp.UI != "" {
			line += ", Web UI " + cp.UI
		}
		fmt.Fprintf(tw, "control plane\t%s\n", line)
	case cp.Embedded && cp.Error == "":
		fmt.Fprintf(tw, "control plane\t%s, not running (the next command that changes the cluster starts it; `dflow server start`)\n", where)
	default:
		fmt.Fprintf(tw, "control plane\t%s at %s: unreachable: %s\n", where, Dash(cp.Address), cp.Error)
	}
	if cp.Running {
		var ws []string
		for _, wk := range cp.Workers {
			ws = append(ws, fmt.Sprintf("%s (last poll %s ago)", wk.Identity, now.Sub(wk.LastSeen).Round(time.Second)))
		}
		if len(ws) == 0 {
			ws = []string{"none: nothing runs this cluster's workflows (`dflow worker`)"}
		}
		fmt.Fprintf(tw, "workers\ton task queue %s: %s\n", cp.TaskQueue, strings.Join(ws, ", "))
	}
	release := func(r *controlplane.ReleaseSummary) string {
		return fmt.Sprintf("%d: %s of version %s (digest %s) by %s, %s", r.ID, r.Kind, deploy.ShortVersion(r.Version), deploy.ShortDigest(r.Digest), r.Who, stamp(r.At, second))
	}
	if s.Current != nil {
		fmt.Fprintf(tw, "release\t%s\n", release(s.Current))
	} else {
		fmt.Fprintf(tw, "release\tnone yet: `dflow deploy`\n")
	}
	if s.Previous != nil {
		fmt.Fprintf(tw, "previous\t%s (where `dflow rollback` goes)\n", release(s.Previous))
	}
	if op := s.Operation; op != nil {
		fmt.Fprintf(tw, "running\t%s\n", operation(*op, now))
		if op.Progress != "" {
			fmt.Fprintf(tw, "\t%s\n", op.Progress)
		}
	} else if cp.Running {
		fmt.Fprintf(tw, "running\tnothing\n")
	}
	for _, op := range s.Watchers {
		fmt.Fprintf(tw, "watching\t%s\n", operation(op, now))
	}
	for _, sc := range s.Schedules {
		fmt.Fprintf(tw, "schedule\t%s: %s at %q, next %s\n", sc.ID, sc.Action, sc.Spec, stamp(sc.Next, second))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	nt := table(w, "INDEX", "ADDRESS", "STATE", "SERVING", "HEALTH", "CHECKED", "LAST SEEN")
	for _, n := range s.Nodes {
		health := "-"
		if n.Health != nil {
			verdict := "ok"
			if *n.Health < *n.Threshold {
				verdict = "UNHEALTHY"
			}
			health = fmt.Sprintf("%.0f/%.0f %s", *n.Health, *n.Threshold, verdict)
		}
		seen := "-"
		switch {
		case !n.LastSeen.IsZero() && now.Sub(n.LastSeen) < time.Second:
			seen = "now"
		case !n.LastSeen.IsZero():
			seen = stamp(n.LastSeen, second)
		}
		fmt.Fprintf(nt, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Index, n.Address, n.State, Dash(deploy.ShortVersion(n.Serving)), health, stamp(n.Checked, second), seen)
	}
	return nt.Flush()
}

// operation is one running workflow on a status line.
func operation(op controlplane.Operation, now time.Time) string {
	s := op.Command
	if op.Who != "" {
		s += " by " + op.Who
	}
	s += fmt.Sprintf(", for %s (workflow %s)", now.Sub(op.Started).Round(time.Second), op.ID)
	if op.URL != "" {
		s += " " + op.URL
	}
	return s
}
