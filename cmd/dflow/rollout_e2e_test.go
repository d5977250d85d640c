package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// verifyScript is the verify program of the rollout test: a node is healthy
// (100, threshold 50) unless the app's 404 page says "#bad".
const verifyScript = `#!/bin/sh
body=$(curl -s -m 5 "${DFLOW_APP_URL}nope")
case "$body" in
  *'#bad'*) echo "0 50" ;;
  '') echo "0 50" ;;
  *) echo "100 50" ;;
esac
`

// TestRolloutControlEndToEnd: a canary (--rollout 34 on 3 nodes switches
// exactly 2; a plain deploy completes it), --auto-rollout under steady
// non-retried load (a version whose verify health drops is rolled back,
// every node ends on the old version, zero failed requests), and a
// --rolling-timed 60s rollout during which the control plane (and its
// worker) is killed: it ends within seconds of the planned time, each node
// switched once.
func TestRolloutControlEndToEnd(t *testing.T) {
	t.Parallel() // its own project, control plane, addresses and ports
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("SKIPPED: the verify program of this test needs curl: apt-get install curl")
	}
	port := testsuite.FreePort(t)
	p := helloProject(t, fmt.Sprintf("app:\n  port: %d\n  drain_timeout: 5s\nverify:\n  program: verify.sh\n", port))
	require.NoError(t, os.WriteFile(filepath.Join(p.dir, "verify.sh"), []byte(verifyScript), 0o755))
	testsuite.Git(t, p.dir, "add", "verify.sh")
	testsuite.Git(t, p.dir, "commit", "--quiet", "--message=verify")
	p.run("set", "3")
	v1 := testsuite.Git(t, p.dir, "rev-parse", "HEAD")
	p.run("deploy")
	p.requireServing(v1)
	var urls []string
	for _, r := range p.versions() {
		urls = append(urls, r.AppURL)
	}
	out, _ := p.run("verify")
	require.Equal(t, 3, strings.Count(out, "healthy"), out)

	t.Run("a canary switches ceil(34% of 3) = 2 nodes; a plain deploy completes it", func(t *testing.T) {
		v2 := p.commit(2)
		p.run("deploy", "--rollout", "34")
		var serving []string
		for _, r := range p.versions() {
			serving = append(serving, r.Serving)
		}
		require.Equal(t, []string{v2, v2, v1}, serving)
		_, errOut := p.run("versions")
		require.Contains(t, errOut, "different versions")
		p.run("deploy")
		p.requireServing(v2)
	})

	t.Run("auto-rollout brings back a version whose health drops", func(t *testing.T) {
		good := testsuite.Git(t, p.dir, "rev-parse", "HEAD")
		l := testsuite.StartLoad(t, urls, testsuite.LoadOptions{Workers: 2, Pause: 5 * time.Millisecond})
		bad := testsuite.ChangeHelloTo(t, p.dir, "#bad")
		errOut, code := p.fail("deploy", "--auto-rollout", "10")
		l.Stop()
		require.NotZero(t, code)
		require.Contains(t, errOut, "auto-rollout: health 0.0 after the switch against a baseline of 100.0")
		require.Contains(t, errOut, "went back to version "+good[:12])
		require.Zero(t, l.Failed(), "failed requests: %v", l.Sample())
		require.Greater(t, l.OK(), int64(100))
		p.requireServing(good)
		out, _ := p.run("releases", "-o", "json")
		var rels []struct{ Kind, Version, Outcome string }
		require.NoError(t, json.Unmarshal([]byte(out), &rels))
		n := len(rels)
		require.Equal(t, "deploy "+bad+" failed", rels[n-2].Kind+" "+rels[n-2].Version+" "+rels[n-2].Outcome)
		require.Equal(t, "rollback "+good+" succeeded", rels[n-1].Kind+" "+rels[n-1].Version+" "+rels[n-1].Outcome)
		out, _ = p.run("health", "-o", "json")
		require.Contains(t, out, `"current"`)
		// Undo the bad commit for what follows.
		testsuite.Git(t, p.dir, "revert", "--no-edit", "HEAD")
	})

	t.Run("a timed rollout survives the control plane being killed", func(t *testing.T) {
		v := p.commit(3)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		dep := p.command(ctx, "deploy", "--rolling-timed", "60s", "-o", "json")
		var stdout, stderr bytes.Buffer
		dep.Stdout, dep.Stderr = &stdout, &stderr
		start := time.Now()
		require.NoError(t, dep.Start())
		// Kill it while it waits for its second batch (at +30 s).
		require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "batch 2 of 3 at") }, 2*time.Minute, 100*time.Millisecond, stderr.String())
		time.Sleep(5 * time.Second)
		b, err := os.ReadFile(filepath.Join(p.dir, ".dflow", "server.json"))
		require.NoError(t, err)
		var info struct{ PID int }
		require.NoError(t, json.Unmarshal(b, &info))
		require.NoError(t, syscall.Kill(info.PID, syscall.SIGKILL))
		killedAt := time.Since(start)
		require.NoError(t, dep.Wait(), stderr.String())
		took := time.Since(start)
		require.Contains(t, stderr.String(), "the control plane went away")
		var res struct {
			Nodes []struct {
				Index      int       `json:"index"`
				SwitchedAt time.Time `json:"switched_at"`
			} `json:"nodes"`
		}
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &res), stdout.String())
		require.Len(t, res.Nodes, 3)
		first := res.Nodes[0].SwitchedAt
		for i, want := range []time.Duration{0, 30 * time.Second, 60 * time.Second} {
			got := res.Nodes[i].SwitchedAt.Sub(first)
			require.InDelta(t, want.Seconds(), got.Seconds(), 8, "node %d switched at +%s, want +%s", i, got, want)
		}
		t.Logf("timed rollout of 60s took %s (from the command's start, build included); the control plane was killed at +%s", took.Round(time.Second), killedAt.Round(time.Second))
		p.requireServing(v)
		// Each node switched once: one process of the new version per node.
		out, _ := p.run("versions", "-o", "json")
		var rows []struct {
			Processes []struct{ Version string } `json:"processes"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &rows))
		for i, r := range rows {
			n := 0
			for _, pr := range r.Processes {
				if pr.Version == v {
					n++
				}
			}
			require.Equal(t, 1, n, "node %d started the new version once", i)
		}
	})

	t.Run("deploy --watch deploys on change and survives a broken build", func(t *testing.T) {
		head := testsuite.Git(t, p.dir, "rev-parse", "HEAD")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		w := p.command(ctx, "deploy", "--watch", "--debounce", "300ms")
		var out testsuite.SyncBuffer
		w.Stdout, w.Stderr = &out, &out
		require.NoError(t, w.Start())
		defer func() { _ = w.Process.Kill(); _ = w.Wait() }()
		waitFor := func(what string, n int) {
			t.Helper()
			require.Eventually(t, func() bool { return strings.Count(out.String(), what) >= n }, 3*time.Minute, 100*time.Millisecond, out.String())
		}
		waitFor("serves on 3 of 3 nodes", 1) // the deploy at start
		hello := filepath.Join(p.dir, "src", "Hello.hs")
		orig, err := os.ReadFile(hello)
		require.NoError(t, err)
		edit := func(text string) {
			b := strings.Replace(string(orig), `text status404 "not found`, `text status404 "not found `+text, 1)
			require.NoError(t, os.WriteFile(hello, []byte(b), 0o644))
		}
		edit("#w1")
		waitFor("serves on 3 of 3 nodes", 2)
		p.requireServing(head + "-dirty")
		body, err := get(p.versions()[0].AppURL + "nope")
		require.NoError(t, err)
		require.Contains(t, body, "#w1")

		require.NoError(t, os.WriteFile(hello, []byte("module Hello where\nthis is not Haskell\n"), 0o644))
		waitFor("still watching", 1)
		edit("#w2")
		waitFor("serves on 3 of 3 nodes", 3)
		body, err = get(p.versions()[0].AppURL + "nope")
		require.NoError(t, err)
		require.Contains(t, body, "#w2", out.String())
		require.NoError(t, w.Process.Signal(os.Interrupt))
		require.NoError(t, w.Wait())
		require.NoError(t, os.WriteFile(hello, orig, 0o644))
	})
}
