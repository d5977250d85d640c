package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/workflows"
)

// table is a tabwriter with a header row written.
func table(w io.Writer, header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	return tw
}

// Dash is s, or "-" when s is empty.
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Stamp is a time as dflow shows it: local, to the second; "-" for none.
func Stamp(t time.Time) string { return stamp(t, second) }

func stamp(t time.Time, layout string) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(layout)
}

const minute, second = "2006-01-02 15:04", "2006-01-02 15:04:05"

// Nodes is `dflow list`.
func Nodes(w io.Writer, rows []controlplane.NodeRow) error {
	tw := table(w, "INDEX", "ADDRESS", "STATE", "AGENT", "UPTIME", "ID")
	var why []string
	for _, r := range rows {
		up := "-"
		if r.UptimeSeconds > 0 {
			up = (time.Duration(r.UptimeSeconds) * time.Second).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Index, r.Address, r.State, r.AgentURL, up, r.ID)
		if r.Error != "" {
			why = append(why, fmt.Sprintf("node %d: %s", r.Index, firstLine(r.Error)))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, l := range why { // why a node's agent did not answer
		fmt.Fprintln(w, l)
	}
	if len(why) > 0 {
		fmt.Fprintln(w, "(`dflow repair` replaces a node whose agent does not answer)")
	}
	return nil
}

// Versions is `dflow versions`; mixed tells whether the nodes serve
// different versions.
func Versions(w io.Writer, rows []controlplane.VersionRow) (mixed bool, err error) {
	tw := table(w, "INDEX", "APP URL", "SERVING", "PROCESS", "OTHER VERSIONS")
	serving := map[string]bool{}
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(tw, "%d\t%s\t?\t-\tunreachable: %s\n", r.Index, r.AppURL, r.Error)
			continue
		}
		serving[r.Serving] = true
		others := make([]string, len(r.Others))
		for i, o := range r.Others {
			others[i] = deploy.ShortVersion(o)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Index, r.AppURL, Dash(deploy.ShortVersion(r.Serving)), Dash(r.ServingID), Dash(strings.Join(others, ", ")))
	}
	return len(serving) > 1, tw.Flush()
}

// Checksums is `dflow compare-checksums`.
func Checksums(w io.Writer, rows []controlplane.ChecksumRow) error {
	tw := table(w, "INDEX", "PROCESS", "PATH", "EXPECTED", "ON NODE", "RESULT")
	for _, r := range rows {
		res := "ok"
		switch {
		case r.Error != "":
			res = "unchecked: " + r.Error
		case !r.OK:
			res = "MISMATCH"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Index, Dash(r.Process), Dash(r.Path), Dash(deploy.ShortDigest(r.Expected)), Dash(deploy.ShortDigest(r.Actual)), res)
	}
	return tw.Flush()
}

// Verdicts is `dflow verify`.
func Verdicts(w io.Writer, vs []deploy.Verdict) error {
	tw := table(w, "INDEX", "HEALTH", "THRESHOLD", "RESULT", "SOURCE", "DETAIL")
	for _, v := range vs {
		res := "healthy"
		if !v.Healthy() {
			res = "UNHEALTHY"
		}
		fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%s\t%s\t%s\n", v.Index, v.Health, v.Threshold, res, v.Source, Dash(v.Detail))
	}
	return tw.Flush()
}

// Health is `dflow health`, with ages counted back from now.
func Health(w io.Writer, stats []deploy.HealthStats, now time.Time) error {
	tw := table(w, "INDEX", "CURRENT", "MIN", "MEAN", "MAX", "THRESHOLD", "TREND", "SAMPLES", "LAST")
	for _, s := range stats {
		trend := "steady"
		switch {
		case s.Trend > 0.5:
			trend = fmt.Sprintf("rising %+.1f", s.Trend)
		case s.Trend < -0.5:
			trend = fmt.Sprintf("falling %+.1f", s.Trend)
		}
		fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%d\t%s ago\n", s.Index, s.Current, s.Min, s.Mean, s.Max, s.Threshold, trend, s.Samples, now.Sub(s.Last).Round(time.Second))
	}
	return tw.Flush()
}

// Releases is `dflow releases`: the history, the current one marked.
func Releases(w io.Writer, st deploy.State) error {
	tw := table(w, "ID", "KIND", "VERSION", "DIGEST", "WHO", "WHEN", "TOOK", "OUTCOME")
	serving := deploy.ServingRelease(st)
	for _, r := range st.Releases {
		took := "-"
		if !r.Finished.IsZero() {
			took = r.Finished.Sub(r.At).Round(100 * time.Millisecond).String()
		}
		kind := r.Kind
		if r.Of != 0 {
			kind += fmt.Sprintf(" to %d", r.Of)
		}
		outcome := r.Outcome
		if r.ID == serving {
			outcome += " (serving)"
		}
		if len(r.LeftOut) > 0 {
			outcome += fmt.Sprintf(" (left out: node %s)", JoinInts(r.LeftOut))
		}
		if r.Error != "" {
			outcome += ": " + firstLine(r.Error)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, kind, deploy.ShortVersion(r.Version), deploy.ShortDigest(r.Digest), r.Who, stamp(r.At, second), took, outcome)
	}
	return tw.Flush()
}

// JoinInts is "0, 2".
func JoinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// Build is `dflow build`: the target and its artifacts.
func Build(w io.Writer, t deploy.Target) error {
	fmt.Fprintf(w, "package  %s\nversion  %s\ndigest   %s\nbundle   %s\ntime     %.1fs\n", t.Package, t.Version, t.Digest, deploy.HumanBytes(t.Size), t.BuildSeconds)
	tw := table(w, "KIND", "PATH", "SIZE", "SHA256")
	for _, a := range t.Artifacts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Kind, a.Path, deploy.HumanBytes(a.Size), deploy.ShortDigest(a.SHA256))
	}
	return tw.Flush()
}

// GC is `dflow gc`: what is kept and why, what goes, which rollbacks are
// lost, and a summary.
func GC(w io.Writer, res workflows.GCResult) error {
	tw := table(w, "", "VERSION", "DIGEST", "LAST USED", "NODES", "WHY")
	row := func(mark string, v deploy.GCVersion, why string) {
		nodes := make([]string, len(v.Nodes))
		for i, n := range v.Nodes {
			nodes[i] = strconv.Itoa(n)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", mark, Dash(deploy.ShortVersion(v.Version)), deploy.ShortDigest(v.Digest), stamp(v.LastUsed, minute), Dash(strings.Join(nodes, ",")), why)
	}
	for _, v := range res.Plan.Keep {
		row("keep", v, strings.Join(v.Keep, "; "))
	}
	verb := "removed"
	if res.DryRun {
		verb = "would go"
	}
	for _, v := range res.Plan.Remove {
		row(verb, v, "")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range res.Plan.LostRollbacks {
		fmt.Fprintf(w, "rollback to release %d (version %s) is not possible after this\n", r.ID, deploy.ShortVersion(r.Version))
	}
	if res.DryRun {
		_, err := fmt.Fprintf(w, "dry run: %d versions would be removed, %d kept\n", len(res.Plan.Remove), len(res.Plan.Keep))
		return err
	}
	n := 0
	for _, x := range res.Nodes {
		n += len(x.Removed)
	}
	_, err := fmt.Fprintf(w, "%d versions removed (%d copies from nodes, %d from the control plane), %d kept\n", len(res.Plan.Remove), n, len(res.Store), len(res.Plan.Keep))
	return err
}

// ChaosReport is what `dflow chaos-monkey --report` shows (and prints as
// JSON with -o json): every kill and the time to recover.
type ChaosReport struct {
	Kills   []deploy.ChaosRecord `json:"kills"`
	Summary deploy.Recovery      `json:"summary"`
}

// ChaosReportOf summarizes the recorded kills.
func ChaosReportOf(kills []deploy.ChaosRecord) ChaosReport {
	if kills == nil {
		kills = []deploy.ChaosRecord{}
	}
	return ChaosReport{Kills: kills, Summary: deploy.SummarizeRecovery(kills)}
}

// Chaos is `dflow chaos-monkey --report`.
func Chaos(w io.Writer, rep ChaosReport) error {
	tw := table(w, "WHEN", "NODE", "ID", "RECOVERED", "RECOVERY")
	for _, k := range rep.Kills {
		rec, took := "not yet", "-"
		if !k.RecoveredAt.IsZero() {
			rec = k.RecoveredAt.Local().Format("15:04:05.000")
			took = fmt.Sprintf("%.1fs", k.RecoverySeconds)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", stamp(k.At, "2006-01-02 15:04:05.000"), k.Index, k.NodeID, rec, took)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := rep.Summary
	_, err := fmt.Fprintf(w, "%d kills, %d recovered; time to recover: mean %.1fs, p50 %.1fs, max %.1fs\n", s.Kills, s.Recovered, s.Mean, s.P50, s.Max)
	return err
}

// Schedules is `dflow schedules`.
func Schedules(w io.Writer, rows []controlplane.Schedule) error {
	tw := table(w, "ID", "SPEC", "NEXT RUN", "ACTION")
	for _, r := range rows {
		next := stamp(r.Next, second)
		if r.Paused {
			next += " (paused)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.Spec, next, r.Action)
	}
	return tw.Flush()
}

// Repair is what `dflow repair` did: the nodes replaced and created, the
// version started, and whether the cluster is whole and healthy now.
func Repair(w io.Writer, res workflows.RepairResult) {
	if res.Plan.Empty() {
		fmt.Fprintln(w, "nothing to repair")
	}
	replaced := map[int]bool{}
	for _, a := range res.Plan.Destroy {
		replaced[a.Index] = true
		fmt.Fprintf(w, "node %d replaced: %s\n", a.Index, a.Reason)
	}
	for _, n := range res.Created {
		if !replaced[n.Index] {
			fmt.Fprintf(w, "node %d created at %s\n", n.Index, n.Address)
		}
	}
	if res.Version != "" {
		fmt.Fprintf(w, "version %s started on %d nodes\n", deploy.ShortVersion(res.Version), len(res.Provisioned))
	}
	state := "whole and healthy"
	if !res.Whole {
		state = "NOT whole and healthy"
	}
	fmt.Fprintf(w, "the cluster is %s\n", state)
}

// Kill is what one `dflow chaos-monkey` did.
func Kill(w io.Writer, res workflows.ChaosResult) {
	switch {
	case res.Skipped != "":
		fmt.Fprintf(w, "no kill: %s\n", res.Skipped)
	case res.DryRun:
		fmt.Fprintf(w, "dry run: would destroy node %d (%s)\n", *res.Victim, res.Node)
	default:
		fmt.Fprintf(w, "destroyed node %d (%s); `dflow repair` brings it back\n", *res.Victim, res.Node)
	}
}

// Server reports a running control plane (word: started, already running,
// running) for the project in dir, as of now.
func Server(w io.Writer, word, dir string, i controlplane.ServerInfo, now time.Time) error {
	ui := i.UI
	if ui == "" {
		ui = "(disabled)"
	}
	_, err := fmt.Fprintf(w, "control plane %s for %s\n  pid       %d\n  temporal  %s\n  web ui    %s\n  up        %s\n  version   %s\n",
		word, dir, i.PID, controlplane.FrontendString(i), ui, now.Sub(i.Started).Round(time.Second), i.Version)
	return err
}

// ServerJSON is Server's -o json: the state, and for a running control
// plane its pid, addresses, start, version and warnings.
func ServerJSON(word string, i *controlplane.ServerInfo) map[string]any {
	out := map[string]any{"state": word}
	if i == nil {
		return out
	}
	out["pid"], out["frontend"], out["ui"], out["started"], out["version"] = i.PID, i.Frontend, i.UI, i.Started, i.Version
	if i.ExposedFrontend != "" {
		out["exposed_frontend"] = i.ExposedFrontend
	}
	if w := i.Warnings(); len(w) > 0 {
		out["warnings"] = w
	}
	return out
}
