package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// helloProject is a git copy of examples/hello with a dflow.yaml for the
// test, built offline with an empty CABAL_DIR.
func helloProject(t *testing.T, yaml string) *project {
	t.Helper()
	testsuite.RequireCabal(t)
	dir := testsuite.HelloRepo(t, testsuite.Example(t, "hello"))
	name := fmt.Sprintf("e2e-hello-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dflow.yaml"), []byte("name: "+name+"\npackage: hello.cabal\n"+yaml), 0o644))
	testsuite.Git(t, dir, "commit", "--quiet", "--all", "--message=dflow.yaml for the test")
	p := &project{t: t, dir: dir, env: []string{"CABAL_DIR=" + testsuite.CabalDir(t)}}
	t.Cleanup(p.cleanup)
	return p
}

// commit changes the app and commits it, returning the new commit hash.
func (p *project) commit(n int) string {
	p.t.Helper()
	return testsuite.ChangeHello(p.t, p.dir, n)
}

type versionsRow struct {
	Index   int      `json:"index"`
	Address string   `json:"address"`
	AppURL  string   `json:"app_url"`
	Serving string   `json:"serving"`
	Others  []string `json:"others"`
}

func (p *project) versions() []versionsRow {
	p.t.Helper()
	out, _ := p.run("versions", "-o", "json")
	var rows []versionsRow
	require.NoError(p.t, json.Unmarshal([]byte(out), &rows), out)
	return rows
}

// get returns the body of GET url, or "" with the error.
func get(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// requireServing checks, through versions and through the app itself, that
// every node serves version v.
func (p *project) requireServing(v string) {
	p.t.Helper()
	for _, r := range p.versions() {
		require.Equal(p.t, v, r.Serving, "node %d serves %s, want %s", r.Index, r.Serving, v)
		body, err := get(r.AppURL)
		require.NoError(p.t, err)
		require.Contains(p.t, body, "hello from "+v, "node %d answers from the wrong version", r.Index)
	}
}

// TestDeployEndToEnd builds examples/hello with GHC and deploys it to three
// local nodes: three deploys of successive commits and two rollbacks under
// steady load from a client that does not retry (zero failed requests), a
// version that never becomes ready (refused, old one keeps serving),
// compare-checksums on a corrupted executable, restart, stop and start.
func TestDeployEndToEnd(t *testing.T) {
	t.Parallel() // its own project, control plane, addresses and ports
	port := testsuite.FreePort(t)
	p := helloProject(t, fmt.Sprintf("app:\n  port: %d\n  drain_timeout: 5s\n  stop_grace: 5s\n", port))
	p.run("set", "3")

	// The first deploy: a cold GHC build.
	v1 := testsuite.Git(t, p.dir, "rev-parse", "HEAD")
	out, errOut := p.run("deploy")
	require.Contains(t, out, "serves on 3 of 3 nodes", errOut)
	p.requireServing(v1)

	var urls []string
	for _, r := range p.versions() {
		urls = append(urls, r.AppURL)
	}
	l := testsuite.StartLoad(t, urls, testsuite.LoadOptions{Workers: 2, Pause: 5 * time.Millisecond})

	var commits []string
	for i := 2; i <= 4; i++ {
		v := p.commit(i)
		commits = append(commits, v)
		out, errOut := p.run("deploy")
		require.Contains(t, out, "serves on 3 of 3 nodes", errOut)
		p.requireServing(v)
	}
	// Rollback goes to the previous release; again goes further back.
	p.run("rollback")
	p.requireServing(commits[1])
	p.run("rollback")
	p.requireServing(commits[0])
	p.run("restart")
	p.requireServing(commits[0])

	l.Stop()
	t.Logf("load: %d ok, %d failed", l.OK(), l.Failed())
	require.Zero(t, l.Failed(), "failed requests: %v", l.Sample())
	require.Greater(t, l.OK(), int64(500), "the load really ran")
	for _, u := range urls {
		seen := l.Served(u)
		for _, v := range []string{commits[0], commits[1], commits[2]} {
			require.NotZero(t, seen[v], "%s never answered from %s under load (saw %v)", u, v, seen)
		}
	}

	// Releases are recorded with who, when and outcome.
	out, _ = p.run("releases", "-o", "json")
	var rels []struct {
		Kind, Version, Who, Outcome string
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rels))
	require.Len(t, rels, 7) // 4 deploys, 2 rollbacks, 1 restart
	for _, r := range rels {
		require.Equal(t, "succeeded", r.Outcome)
		require.NotEmpty(t, r.Who)
	}

	t.Run("a version that never becomes ready is refused", func(t *testing.T) {
		l := testsuite.StartLoad(t, urls, testsuite.LoadOptions{Workers: 2, Pause: 5 * time.Millisecond})
		y, err := os.ReadFile(filepath.Join(p.dir, "dflow.yaml"))
		require.NoError(t, err)
		bad := string(y) + "  ready_timeout: 3s\n  env: [HELLO_FAIL_HEALTH=1]\n"
		require.NoError(t, os.WriteFile(filepath.Join(p.dir, "dflow.yaml"), []byte(bad), 0o644))
		t.Cleanup(func() { _ = os.WriteFile(filepath.Join(p.dir, "dflow.yaml"), y, 0o644) })
		p.commit(5)
		errOut, code := p.fail("deploy")
		require.NotZero(t, code)
		require.Contains(t, errOut, "did not become ready")
		require.Contains(t, errOut, "/health", "the error names the probe")
		require.Contains(t, errOut, "node 0", "the error names the node")
		require.Contains(t, errOut, "listening on", "the error ends with the new version's log")
		l.Stop()
		require.Zero(t, l.Failed(), "failed requests: %v", l.Sample())
		p.requireServing(commits[0])
		out, _ := p.run("releases", "-o", "json")
		require.Contains(t, out, `"outcome":"failed"`)
	})

	t.Run("stop and start", func(t *testing.T) {
		p.run("stop")
		for _, r := range p.versions() {
			require.Empty(t, r.Serving)
			resp, err := http.Post(r.AppURL, "text/plain", strings.NewReader("x"))
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		}
		p.run("start")
		p.requireServing(commits[0])
	})
	t.Run("compare-checksums finds a flipped byte", func(t *testing.T) {
		p.run("compare-checksums")
		rows := p.versions()
		var digest string
		out, _ := p.run("versions", "-o", "json")
		var full []struct {
			Processes []struct{ ID, Digest, State string } `json:"processes"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &full))
		for _, pr := range full[1].Processes {
			if pr.State == "serving" {
				digest = pr.Digest
			}
		}
		require.NotEmpty(t, digest)
		exe := filepath.Join(p.dir, ".dflow", "nodes", fmt.Sprint(rows[1].Index), "releases", digest, "bin", "hello")
		b, err := os.ReadFile(exe)
		require.NoError(t, err)
		b[len(b)/2] ^= 0xff
		// The file is busy (it runs): replace it, as a corruption on disk would.
		require.NoError(t, os.WriteFile(exe+".new", b, 0o755))
		require.NoError(t, os.Rename(exe+".new", exe))
		errOut, code := p.fail("compare-checksums")
		require.Equal(t, 1, code)
		require.Contains(t, errOut, fmt.Sprintf("nodes %d)", rows[1].Index))
	})

}

// TestDeployThroughShellPlugin: the nodes come from the VM-backend plugin
// written as a shell script (examples/plugins/vm-local.sh); examples/hello
// is built and deployed to them and served.
func TestDeployThroughShellPlugin(t *testing.T) {
	t.Parallel() // its own project, control plane, addresses and ports
	script, err := filepath.Abs(filepath.Join("..", "..", "examples", "plugins", "vm-local.sh"))
	require.NoError(t, err)
	p := helloProject(t, fmt.Sprintf("backends:\n  vm: %s\napp:\n  port: %d\n", script, testsuite.FreePort(t)))
	out, errOut := p.run("set", "2")
	require.Contains(t, out, "2 created", errOut)
	rows := p.list()
	require.Len(t, rows, 2)
	for _, r := range rows {
		require.Equal(t, "running", r.State)
	}
	v := testsuite.Git(t, p.dir, "rev-parse", "HEAD")
	out, errOut = p.run("deploy")
	require.Contains(t, out, "serves on 2 of 2 nodes", errOut)
	p.requireServing(v)
	p.run("set", "0")
	require.Empty(t, p.list())
}
