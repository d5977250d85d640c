package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

type chaosKill struct {
	At              time.Time `json:"at"`
	Index           int       `json:"index"`
	Address         string    `json:"address"`
	RecoveredAt     time.Time `json:"recovered_at"`
	RecoverySeconds float64   `json:"recovery_seconds"`
}

type chaosReportOut struct {
	Kills   []chaosKill `json:"kills"`
	Summary struct {
		Kills     int     `json:"kills"`
		Recovered int     `json:"recovered"`
		Mean      float64 `json:"mean_seconds"`
		P50       float64 `json:"p50_seconds"`
		Max       float64 `json:"max_seconds"`
	} `json:"summary"`
}

func (p *project) chaosReport() chaosReportOut {
	p.t.Helper()
	out, _ := p.run("chaos-monkey", "--report", "-o", "json")
	var r chaosReportOut
	require.NoError(p.t, json.Unmarshal([]byte(out), &r), out)
	return r
}

// background runs dflow in the background; the returned func stops it
// (SIGINT: stop following) and returns its output.
func (p *project) background(args ...string) func() string {
	p.t.Helper()
	cmd := p.command(context.Background(), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(p.t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stopped := false
	stop := func() string {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		return out.String()
	}
	p.t.Cleanup(func() { stop() })
	return stop
}

// corruptServing flips a byte of the executable node index serves from.
func (p *project) corruptServing(index int) {
	p.t.Helper()
	out, _ := p.run("versions", "-o", "json")
	var rows []struct {
		Index     int                              `json:"index"`
		Processes []struct{ Digest, State string } `json:"processes"`
	}
	require.NoError(p.t, json.Unmarshal([]byte(out), &rows))
	var digest string
	for _, r := range rows {
		for _, pr := range r.Processes {
			if r.Index == index && pr.State == "serving" {
				digest = pr.Digest
			}
		}
	}
	require.NotEmpty(p.t, digest)
	exe := filepath.Join(p.dir, ".dflow", "nodes", fmt.Sprint(index), "releases", digest, "bin", "hello")
	b, err := os.ReadFile(exe)
	require.NoError(p.t, err)
	b[len(b)/2] ^= 0xff
	require.NoError(p.t, os.WriteFile(exe+".new", b, 0o755))
	require.NoError(p.t, os.Rename(exe+".new", exe))
}

// TestHealEndToEnd: on 4 local nodes serving examples/hello, repair heals a
// node destroyed or cycled by hand and one whose executable was corrupted;
// then, under a steady non-retrying load, `repair --watch` and
// `chaos-monkey --rampage 5s` run until chaos-monkey has killed 4 nodes
// (one at a time: each only once the cluster is whole again): every kill is
// recovered (4 healthy nodes serving the current version again), the
// report shows each recovery time, and no request to a node that was not
// down failed.
func TestHealEndToEnd(t *testing.T) {
	t.Parallel() // its own project, control plane, addresses and ports
	port := testsuite.FreePort(t)
	p := helloProject(t, fmt.Sprintf("app:\n  port: %d\n  drain_timeout: 2s\n  stop_grace: 2s\n", port))
	p.run("set", "4")
	v1 := testsuite.Git(t, p.dir, "rev-parse", "HEAD")
	p.run("deploy")
	p.requireServing(v1)

	t.Run("bad input changes nothing", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			code int // 2: refused before anything started; 1: the control plane refused
		}{
			{[]string{"gc", "--count", "0"}, 2}, {[]string{"gc"}, 2}, {[]string{"gc", "--older", "yesterday"}, 2},
			{[]string{"gc", "--count", "2", "--schedule", "not a cron"}, 1},
			{[]string{"chaos-monkey", "--min-healthy", "-2"}, 2}, {[]string{"chaos-monkey", "--rampage", "0s"}, 2},
			{[]string{"repair", "--interval", "1s"}, 2}, {[]string{"schedules", "delete", "nope"}, 1},
		} {
			errOut, code := p.fail(tt.args...)
			require.Equal(t, tt.code, code, "dflow %v: %s", tt.args, errOut)
			require.Contains(t, errOut, "dflow: ", "dflow %v says why", tt.args)
		}
		out, _ := p.run("schedules", "-o", "json")
		require.Equal(t, "[]\n", out, "no schedule was made")
		require.Empty(t, p.chaosReport().Kills)
		require.Len(t, p.versions(), 4)
	})

	t.Run("repair heals destroy, cycle and a corrupted executable", func(t *testing.T) {
		out, _ := p.run("repair")
		require.Contains(t, out, "nothing to repair")
		p.run("cycle", "1")
		p.run("destroy", "2")
		// With node 2 out, cycling a serving node would take a second one
		// out: repair.max_unavailable (1) refuses it, and nothing changes.
		refusal, code := p.fail("cycle", "0")
		require.Contains(t, refusal, "taking node 0 out too would exceed repair.max_unavailable 1")
		require.Contains(t, refusal, "node 2 (")
		require.NotEqual(t, 0, code)
		p.corruptServing(3)
		p.fail("compare-checksums")
		out, errOut := p.run("repair")
		require.Contains(t, out, "node 2 created", errOut)
		require.Contains(t, out, "node 3 replaced: the executable of", errOut)
		require.Contains(t, out, "whole and healthy", errOut)
		require.Len(t, p.versions(), 4)
		p.requireServing(v1)
		p.run("compare-checksums")
	})

	var urls []string
	for _, r := range p.versions() {
		urls = append(urls, r.AppURL)
	}
	l := testsuite.StartLoad(t, urls, testsuite.LoadOptions{Workers: 2, Pause: 5 * time.Millisecond})
	stopWatch := p.background("repair", "--watch", "--interval", "1s")
	time.Sleep(2 * time.Second)
	stopRampage := p.background("chaos-monkey", "--rampage", "5s")
	// Until the fourth kill, not for a fixed time: a round kills only a
	// whole cluster, so the pace is repair's (a kill every 5.5 s idle; on a
	// loaded CI machine a round took 7 s and a repair 13 s, and a minute
	// held 3 kills). How fast is for bench/ to measure.
	const wantKills = 4
	require.Eventually(t, func() bool { return len(p.chaosReport().Kills) >= wantKills }, 4*time.Minute, 2*time.Second,
		"chaos-monkey kills %d nodes, one at a time", wantKills)
	p.run("chaos-monkey", "--stop")
	rampageOut := stopRampage()
	// The last kill recovers.
	var rep chaosReportOut
	require.Eventually(t, func() bool {
		rep = p.chaosReport()
		return rep.Summary.Recovered == rep.Summary.Kills
	}, 60*time.Second, time.Second, "every kill recovers")
	p.run("repair", "--stop")
	watchOut := stopWatch()
	l.Stop()
	t.Logf("rampage:\n%s", rampageOut)
	t.Logf("repair --watch:\n%s", watchOut)

	require.GreaterOrEqual(t, len(rep.Kills), wantKills)
	out, _ := p.run("chaos-monkey", "--report")
	t.Logf("chaos-monkey --report:\n%s", out)
	for _, k := range rep.Kills {
		require.False(t, k.RecoveredAt.IsZero())
		require.Greater(t, k.RecoverySeconds, 0.0)
		require.Contains(t, out, fmt.Sprintf("%.1fs", k.RecoverySeconds))
	}
	require.Contains(t, out, "time to recover: mean")
	require.Contains(t, watchOut, "chaos kill(s) recovered")
	for i := 1; i < len(rep.Kills); i++ {
		require.False(t, rep.Kills[i].At.Before(rep.Kills[i-1].RecoveredAt), "the guardrail: a kill only once the cluster was whole again")
	}

	// Failures are allowed only at a killed node's URL while it was down.
	excused := func(f testsuite.LoadFailure) bool {
		u, err := url.Parse(f.URL)
		if err != nil {
			return false
		}
		for _, k := range rep.Kills {
			if u.Hostname() == k.Address && !f.End.Before(k.At.Add(-time.Second)) && !f.Start.After(k.RecoveredAt.Add(time.Second)) {
				return true
			}
		}
		return false
	}
	var bad []string
	perURL := map[string]int{}
	for _, f := range l.Failures() {
		perURL[f.URL]++
		if !excused(f) {
			bad = append(bad, f.String())
		}
	}
	t.Logf("load: %d ok, %d failed (per URL %v), all while their node was down", l.OK(), l.Failed(), perURL)
	require.Empty(t, bad, "requests to nodes that were not down failed")
	require.Greater(t, l.OK(), int64(1000), "the load really ran")

	require.Len(t, p.versions(), 4)
	p.requireServing(v1)

	t.Run("gc", func(t *testing.T) {
		v2 := p.commit(2)
		p.run("deploy")
		p.requireServing(v2)
		out, _ := p.run("gc", "--count", "1", "--dry-run")
		require.Contains(t, out, "would go")
		require.Contains(t, out, "is not possible after this")
		out, _ = p.run("gc", "--count", "1")
		require.Contains(t, out, "1 versions removed (4 copies from nodes, 1 from the control plane)")
		p.requireServing(v2)
		errOut, _ := p.fail("rollback")
		require.Contains(t, errOut, "not in the control plane's artifact store")
	})

	t.Run("a schedule runs when triggered", func(t *testing.T) {
		p.run("gc", "--count", "5", "--schedule", "0 3 * * *")
		out, _ := p.run("schedules")
		require.Contains(t, out, "0 3 * * *")
		out, errOut := p.run("schedules", "trigger", "gc")
		require.Contains(t, errOut, "done in", "the triggered run was followed to its end")
		require.Contains(t, out, "{", "its result is printed")
		p.run("schedules", "delete", "gc")
		out, _ = p.run("schedules", "-o", "json")
		require.Equal(t, "[]\n", out)
	})
}
