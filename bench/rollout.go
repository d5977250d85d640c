package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/testsuite"
)

// rolloutRun is one measured deploy: its phases from the workflow history.
type rolloutRun struct {
	N        int     `json:"n"`
	Parallel int     `json:"parallel"` // deploy.parallel
	Command  float64 `json:"command_s"`
	Workflow float64 `json:"workflow_s"`
	Build    float64 `json:"build_s"`
	Copy     float64 `json:"copy_s"`       // wall of the copy step
	Switch   float64 `json:"node_steps_s"` // wall of the per-node steps (start, gate, switch, drain)
	Rollout  float64 `json:"rollout_s"`    // copy + node steps: the deploy without the build
	// Medians per node (seconds).
	StartMed, GateMed, SwitchMed, DrainMed float64
	// The control plane's own time per node step: wall minus time inside
	// activities, per activity, over the node's steps.
	OverheadMeanMs, OverheadMaxMs float64
	Steps                         int       `json:"steps"`
	StartGate                     []float64 `json:"start_gate_s"` // per node
}

type rolloutData struct {
	Runs        []rolloutRun `json:"runs"`
	AgentRSSkB  []int        `json:"agent_rss_kb"`
	AgentAnonkB []int        `json:"agent_rss_anon_kb"` // private (anonymous) part of VmRSS
	AppRSSkB    []int        `json:"app_rss_kb"`
	MemAvailMB  [2]int       `json:"mem_available_mb"` // before set, with every node up and serving
	AppPerNode  string       `json:"app"`
	ParallelRun *rolloutRun  `json:"parallel_run,omitempty"`
}

// runRollout measures deploys of examples/hello to N local nodes, from the
// largest N down (so that every measured deploy replaces a running version
// on every node), each a new commit: wall time, phases from the workflow's
// history, the control plane's overhead per node step. First a 100-node
// rollout with deploy.parallel 25; then, idle, the agents' memory.
func runRollout(e *env) ([]Figure, any, error) {
	var ns []int
	for _, s := range strings.Split(e.opt.rolloutNodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, nil, fmt.Errorf("-rollout-nodes: bad count %q", s)
		}
		ns = append(ns, n)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ns)))
	tb := &benchTB{tmp: e.work}
	port := testsuite.FreePort(tb)
	yaml := func(parallel int) string {
		return fmt.Sprintf("nodes:\n  parallel: 16\n  max: 1000\napp:\n  port: %d\n  drain_timeout: 5s\n  stop_grace: 5s\ndeploy:\n  parallel: %d\n", port, parallel)
	}
	d := helloProject(e, tb, "rollout", yaml(25))
	c := d.temporal
	data := rolloutData{AppPerNode: "examples/hello (Warp)"}
	data.MemAvailMB[0] = memAvailableMB()
	maxN := ns[0]
	fmt.Printf("  set %d: %.1fs\n", maxN, d.must("set", strconv.Itoa(maxN)))
	t := time.Now()
	d.rollout("deploy")
	fmt.Printf("  first deploy to %d nodes (deploy.parallel 25, cold build): %.1fs\n", maxN, time.Since(t).Seconds())

	tc := c()
	defer tc.Close()
	measure := func(n, parallel, change int) rolloutRun {
		testsuite.ChangeHello(tb, d.dir, change)
		s := d.rollout("deploy")
		r := analyse(history(tc, s.Workflow))
		r.N, r.Parallel, r.Command = n, parallel, s.End.Sub(s.Start).Seconds()
		fmt.Printf("  N=%-3d parallel %-2d: command %.1fs, build %.1fs, copy %.2fs, node steps %.1fs; per node start %.3fs gate %.3fs switch %.3fs drain %.3fs; overhead %.1f ms/step (max %.1f)\n",
			n, parallel, r.Command, r.Build, r.Copy, r.Switch, r.StartMed, r.GateMed, r.SwitchMed, r.DrainMed, r.OverheadMeanMs, r.OverheadMaxMs)
		return r
	}
	var fs []Figure
	// deploy.parallel 25 over maxN nodes.
	if maxN >= 25 {
		pr := measure(maxN, 25, 201)
		data.ParallelRun = &pr
	}
	// Idle agents (and apps): nothing runs now.
	time.Sleep(2 * time.Second)
	for _, pid := range d.agentPIDs() {
		data.AgentRSSkB = append(data.AgentRSSkB, rssKB(pid))
		data.AgentAnonkB = append(data.AgentAnonkB, statusKB(pid, "RssAnon:"))
	}
	data.AppRSSkB = appRSS(d)
	data.MemAvailMB[1] = memAvailableMB()

	// deploy.parallel 1 from here on.
	if err := os.WriteFile(filepath.Join(d.dir, "dflow.yaml"), []byte(fmt.Sprintf("name: bench-rollout-%d\npackage: hello.cabal\n%s", os.Getpid(), yaml(1))), 0o644); err != nil {
		return nil, data, err
	}
	cur := maxN
	for i, n := range ns {
		if n != cur {
			d.must("set", strconv.Itoa(n))
			cur = n
		}
		data.Runs = append(data.Runs, measure(n, 1, 210+i))
	}

	for _, r := range data.Runs {
		fs = append(fs, fig("deploy wall time (command)", r.N, r.Command, "s", fmt.Sprintf("build %.1f s + copy %.2f s + node steps %.1f s", r.Build, r.Copy, r.Switch)))
	}
	for _, r := range data.Runs {
		fs = append(fs, fig("rollout without build (copy + node steps)", r.N, r.Rollout, "s", fmt.Sprintf("%.3f s per node", r.Rollout/float64(r.N))))
	}
	for _, r := range data.Runs {
		fs = append(fs, fig("per node: start / gate / switch / drain (median)", r.N, r.StartMed+r.GateMed+r.SwitchMed+r.DrainMed, "s",
			fmt.Sprintf("start %.3f, gate %.3f, switch %.3f, drain+stop %.3f s", r.StartMed, r.GateMed, r.SwitchMed, r.DrainMed)))
	}
	for _, r := range data.Runs {
		fs = append(fs, atMost("control plane overhead per node step (mean)", r.N, r.OverheadMeanMs, "ms", 50, fmt.Sprintf("max %.1f ms; %d steps", r.OverheadMaxMs, r.Steps)))
	}
	// One node's start+gate time: the median over the deploy.parallel 1
	// runs (one node at a time), less noisy than the single N=1 deploy.
	var sg []float64
	for _, r := range data.Runs {
		sg = append(sg, r.StartGate...)
	}
	if pr := data.ParallelRun; pr != nil {
		note := fmt.Sprintf("copy %.2f s + node steps %.1f s", pr.Copy, pr.Switch)
		if len(sg) > 0 {
			one := median(sg)
			bound := 4*one + pr.Copy
			fs = append(fs, atMost("rollout, deploy.parallel 25 (copy + node steps)", pr.N, pr.Rollout, "s", bound, note+fmt.Sprintf("; bound = 4 x %.3f s (one node's start+gate, median at parallel 1) + copy", one)))
		} else {
			fs = append(fs, fig("rollout, deploy.parallel 25 (copy + node steps)", pr.N, pr.Rollout, "s", note))
		}
		fs = append(fs, atMost("control plane overhead per node step, parallel 25 (mean)", pr.N, pr.OverheadMeanMs, "ms", 50, fmt.Sprintf("max %.1f ms", pr.OverheadMaxMs)))
	}
	if len(data.AgentRSSkB) > 0 {
		a := append([]int(nil), data.AgentRSSkB...)
		sort.Ints(a)
		fs = append(fs, atMost("agent resident memory, idle (max VmRSS)", len(a), float64(a[len(a)-1])/1024, "MB", 30, fmt.Sprintf("median %.1f MB; includes the shared pages of the dflow binary", float64(a[len(a)/2])/1024)))
		b := append([]int(nil), data.AgentAnonkB...)
		sort.Ints(b)
		fs = append(fs, atMost("agent private memory, idle (max RssAnon)", len(b), float64(b[len(b)-1])/1024, "MB", 30, fmt.Sprintf("median %.1f MB", float64(b[len(b)/2])/1024)))
	}
	if len(data.AppRSSkB) > 0 {
		a := append([]int(nil), data.AppRSSkB...)
		sort.Ints(a)
		fs = append(fs, fig("hello app resident memory (median)", len(a), float64(a[len(a)/2])/1024, "MB", ""))
	}
	fs = append(fs, fig("machine memory used by the nodes", maxN, float64(data.MemAvailMB[0]-data.MemAvailMB[1]), "MB", "MemAvailable before set, minus with every node serving"))
	if e.plots != "" {
		if err := plotRollout(e.plots, data); err != nil {
			return fs, data, err
		}
	}
	return fs, data, nil
}

// analyse finds a deploy's phases in its history.
func analyse(h wfHistory) rolloutRun {
	r := rolloutRun{Workflow: h.End.Sub(h.Start).Seconds()}
	var copyFrom, copyTo, stepFrom, stepTo time.Time
	var starts, gates, switches, drains []float64
	nodes := map[int]*nodeSteps{}
	first := func(t *time.Time, v time.Time) {
		if t.IsZero() || v.Before(*t) {
			*t = v
		}
	}
	last := func(t *time.Time, v time.Time) {
		if v.After(*t) {
			*t = v
		}
	}
	for _, a := range h.Acts {
		switch a.Type {
		case "Build":
			r.Build = a.inside().Seconds()
		case "CopyToNode":
			first(&copyFrom, a.Scheduled)
			last(&copyTo, a.Closed)
		case "NodeProcesses", "StartOnNode", "SwitchOnNode", "StopOnNode":
			first(&stepFrom, a.Scheduled)
			last(&stepTo, a.Closed)
			ns := nodes[a.Node]
			if ns == nil {
				ns = &nodeSteps{}
				nodes[a.Node] = ns
			}
			first(&ns.from, a.Scheduled)
			last(&ns.to, a.Closed)
			ns.inside += a.inside()
			ns.n++
			switch a.Type {
			case "StartOnNode":
				var info api.ProcessInfo
				r.StartGate = append(r.StartGate, a.inside().Seconds())
				if err := a.decodeResult(&info); err == nil && !info.StartedAt.IsZero() && info.StartedAt.After(a.Started) && info.StartedAt.Before(a.Closed) {
					starts = append(starts, info.StartedAt.Sub(a.Started).Seconds())
					gates = append(gates, a.Closed.Sub(info.StartedAt).Seconds())
				} else {
					starts = append(starts, a.inside().Seconds())
					gates = append(gates, 0)
				}
			case "SwitchOnNode":
				switches = append(switches, a.inside().Seconds())
			case "StopOnNode":
				drains = append(drains, a.inside().Seconds())
			}
		}
	}
	if v2 := nodeTurns(h, startActs(h.Acts)); v2 != nil {
		// Since workflows' node-steps-2 change the list and the switch are
		// local activities (no events of their own) and the old version's
		// stop runs beside the next nodes: a node's turn runs from
		// BeganAt (its slot opened) to SwitchedAt, over 3 steps (list,
		// start+gate, switch); everything in it but StartOnNode's own
		// time is counted as the control plane's, the local activities'
		// agent calls included.
		switches = v2.switches
		stepFrom = v2.from
		nodes = v2.nodes
	}
	r.Copy = copyTo.Sub(copyFrom).Seconds()
	r.Switch = stepTo.Sub(stepFrom).Seconds()
	r.Rollout = stepTo.Sub(copyFrom).Seconds()
	r.StartMed, r.GateMed, r.SwitchMed, r.DrainMed = median(starts), median(gates), median(switches), median(drains)
	var sum float64
	for _, ns := range nodes {
		per := float64(ns.to.Sub(ns.from)-ns.inside) / float64(ns.n) / 1e6
		sum += per
		r.OverheadMaxMs = max(r.OverheadMaxMs, per)
		r.Steps += ns.n
	}
	if len(nodes) > 0 {
		r.OverheadMeanMs = sum / float64(len(nodes))
	}
	return r
}

// nodeSteps is one node's turn in a rollout: from, to, the time spent
// inside its activities, and how many steps.
type nodeSteps struct {
	from, to time.Time
	inside   time.Duration
	n        int
}

// turns are the node turns of a rollout whose workflow reports them.
type turns struct {
	nodes    map[int]*nodeSteps
	switches []float64 // StartOnNode's end to the switch, per node
	from     time.Time
}

// startActs is the StartOnNode activity of each node (the last, if several).
func startActs(acts []actSpan) map[int]actSpan {
	m := map[int]actSpan{}
	for _, a := range acts {
		if a.Type == "StartOnNode" {
			m[a.Node] = a
		}
	}
	return m
}

// nodeTurns reads the nodes' turns from the deploy's result (BeganAt,
// SwitchedAt); nil for workflows that do not report them.
func nodeTurns(h wfHistory, starts map[int]actSpan) *turns {
	var res struct {
		Nodes []struct {
			Index      int       `json:"index"`
			BeganAt    time.Time `json:"began_at"`
			SwitchedAt time.Time `json:"switched_at"`
			Skipped    bool      `json:"skipped"`
		} `json:"nodes"`
	}
	if h.decodeResult(&res) != nil {
		return nil
	}
	t := &turns{nodes: map[int]*nodeSteps{}}
	for _, n := range res.Nodes {
		st, ok := starts[n.Index]
		if n.BeganAt.IsZero() || n.SwitchedAt.IsZero() || n.Skipped || !ok {
			continue
		}
		t.nodes[n.Index] = &nodeSteps{from: n.BeganAt, to: n.SwitchedAt, inside: st.inside(), n: 3}
		t.switches = append(t.switches, n.SwitchedAt.Sub(st.Closed).Seconds())
		if t.from.IsZero() || n.BeganAt.Before(t.from) {
			t.from = n.BeganAt
		}
	}
	if len(t.nodes) == 0 {
		return nil
	}
	return t
}

func median(xs []float64) float64 {
	xs = append([]float64(nil), xs...)
	sort.Float64s(xs)
	return quantile(xs, 0.5)
}

// appRSS is VmRSS of every running app process of the project (kB).
func appRSS(d dflow) []int {
	out, _, err := d.run("versions", "-o", "json")
	if err != nil {
		return nil
	}
	var rows []struct {
		Processes []api.ProcessInfo `json:"processes"`
	}
	if json.Unmarshal([]byte(out), &rows) != nil {
		return nil
	}
	var kb []int
	for _, r := range rows {
		for _, p := range r.Processes {
			if p.PID > 0 && p.Alive() {
				if v := rssKB(p.PID); v > 0 {
					kb = append(kb, v)
				}
			}
		}
	}
	return kb
}

func memAvailableMB() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`MemAvailable:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.Atoi(string(m[1]))
	return kb / 1024
}
