package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// TestFaultsDuringDeploys kills, at a random point of a deploy, the control
// plane (and the worker in it) or a node's agent, several times, under a
// steady non-retried load. Every deploy ends completed or rolled back
// (--auto-rollout; a step stuck on a killed agent pauses the deploy for
// deploy.stuck_timeout, 5 s here, then aborts it); afterwards (and after `repair` for a killed node) every
// node serves the current release, the store agrees with what runs, no app
// process is orphaned, and no request to a node that was not killed fails.
func TestFaultsDuringDeploys(t *testing.T) {
	t.Parallel() // its own project, control plane, addresses and ports
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DFLOW_FAULT_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d (DFLOW_FAULT_SEED=%d repeats this run)", seed, seed)

	// A killed agent makes the deploy's step on its node stuck: unattended,
	// the pause ends after deploy.stuck_timeout with the default
	// deploy.stuck_action, abort (with compensation), so every deploy ends.
	p := helloProject(t, fmt.Sprintf("app:\n  port: %d\n  drain_timeout: 3s\n  stop_grace: 3s\ndeploy:\n  stuck_timeout: 5s\n", testsuite.FreePort(t)))
	p.run("set", "3")
	p.run("deploy")
	var urls []string
	for _, r := range p.versions() {
		urls = append(urls, r.AppURL)
	}
	l := testsuite.StartLoad(t, urls, testsuite.LoadOptions{Workers: 1, Pause: 5 * time.Millisecond})
	type killed struct {
		host     string
		from, to time.Time
	}
	var down []killed

	for round, fault := range []string{"control-plane", "agent", "control-plane", "agent"} {
		p.commit(100 + round)
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		dep := p.command(ctx, "deploy", "--auto-rollout", "50")
		var out bytes.Buffer
		dep.Stdout, dep.Stderr = &out, &out
		start := time.Now()
		require.NoError(t, dep.Start())
		// A random point: during the build (~3-5 s) or the rollout after it.
		delay := time.Duration(500+rng.IntN(6000)) * time.Millisecond
		time.Sleep(delay)
		victim := ""
		switch fault {
		case "control-plane":
			b, err := os.ReadFile(filepath.Join(p.dir, ".dflow", "server.json"))
			require.NoError(t, err)
			var info struct{ PID int }
			require.NoError(t, json.Unmarshal(b, &info))
			require.NoError(t, syscall.Kill(info.PID, syscall.SIGKILL))
		case "agent":
			i := rng.IntN(3)
			pid := testsuite.AgentPID(t, filepath.Join(p.dir, ".dflow", "nodes", strconv.Itoa(i)))
			require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
			u, _ := url.Parse(urls[i])
			victim = u.Hostname()
			down = append(down, killed{host: victim, from: time.Now().Add(-time.Second)})
		}
		err := dep.Wait()
		cancel()
		t.Logf("round %d: %s killed %s after start; the deploy %s in %s", round+1, fault, delay, map[bool]string{true: "completed", false: "failed"}[err == nil], time.Since(start).Round(100*time.Millisecond))
		if err != nil {
			// It failed: it must say why, and have gone back where it had switched.
			t.Logf("round %d: the deploy's output:\n%s", round+1, out.String())
			require.NotContains(t, out.String(), "panic", out.String())
		}
		if victim != "" {
			rout, rerr := p.run("repair")
			down[len(down)-1].to = time.Now().Add(time.Second)
			t.Logf("repair: %s %s", strings.TrimSpace(rout), rerr)
		}
		p.requireConsistent()
	}
	l.Stop()

	var bad []string
	for _, f := range l.Failures() {
		u, _ := url.Parse(f.URL)
		excused := false
		for _, k := range down {
			if u.Hostname() == k.host && !f.End.Before(k.from) && !f.Start.After(k.to) {
				excused = true
			}
		}
		if !excused {
			bad = append(bad, f.String())
		}
	}
	t.Logf("load: %d ok, %d failed, %d of them at a killed node while it was down", l.OK(), l.Failed(), l.Failed()-len(bad))
	require.Empty(t, bad, "requests to nodes that were not killed failed")
}

// requireConsistent checks the cluster after a fault: every node serves the
// current release, the store's nodes are the running agents, and every app
// process belongs to a live agent that counts it as alive.
func (p *project) requireConsistent() {
	t := p.t
	t.Helper()
	out, _ := p.run("releases", "-o", "json")
	var rels []struct {
		ID      int    `json:"id"`
		Version string `json:"version"`
		Kind    string `json:"kind"`
		Outcome string `json:"outcome"`
		Of      int    `json:"of"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rels))
	for _, r := range rels {
		require.NotEqual(t, "running", r.Outcome, "release %d ended", r.ID)
	}
	rows := p.list()
	require.Len(t, rows, 3)
	for _, r := range rows {
		require.Equal(t, "running", r.State, "node %d: the store agrees with what runs", r.Index)
	}
	vs := p.versions()
	for _, v := range vs[1:] {
		require.Equal(t, vs[0].Serving, v.Serving, "every node serves the same version")
	}
	require.NotEmpty(t, vs[0].Serving)
	// Every app process is known and alive to its node's agent.
	out, _ = p.run("versions", "-o", "json")
	var full []struct {
		Processes []struct {
			PID   int    `json:"pid"`
			State string `json:"state"`
		} `json:"processes"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &full))
	known := map[int]bool{}
	for _, n := range full {
		for _, pr := range n.Processes {
			if pr.State == "serving" || pr.State == "ready" || pr.State == "starting" || pr.State == "draining" {
				known[pr.PID] = true
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	needle := filepath.Join(p.dir, ".dflow", "nodes")
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil || !strings.HasPrefix(string(b), needle) || !strings.Contains(string(b), "/releases/") {
			continue
		}
		if st, err := os.ReadFile(filepath.Join(filepath.Dir(f), "stat")); err == nil && strings.Contains(string(st), ") Z ") {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		require.True(t, known[pid], "app process %d (%s) is an orphan: no agent counts it", pid, strings.ReplaceAll(string(b), "\x00", " "))
	}
}
