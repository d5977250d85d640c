package main_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/agent/auth"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// dflowBin is the binary under test: $DFLOW_BIN (the Makefile builds it),
// else one built here.
var dflowBin string

func TestMain(m *testing.M) {
	dflowBin = os.Getenv("DFLOW_BIN")
	if dflowBin == "" {
		dir, err := os.MkdirTemp("", "dflow-e2e-bin")
		if err != nil {
			panic(err)
		}
		dflowBin = filepath.Join(dir, "dflow")
		out, err := exec.Command("go", "build", "-o", dflowBin, ".").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build dflow: %v\n%s", err, out)
			os.Exit(1)
		}
		defer os.RemoveAll(dir)
	}
	code := m.Run()
	os.Exit(code)
}

// project is a temp project dir with its own dflow.yaml; Cleanup destroys
// its nodes and stops its control plane, whatever the test did.
type project struct {
	t   *testing.T
	dir string
	env []string // added to dflow's environment (CABAL_DIR, ...)
}

// command is dflow with args, run in the project with its environment.
func (p *project) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, dflowBin, args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), p.env...)
	return cmd
}

func newProject(t *testing.T, yaml string) *project {
	t.Helper()
	dir := t.TempDir()
	name := fmt.Sprintf("e2e-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dflow.yaml"), []byte("name: "+name+"\n"+yaml), 0o644))
	p := &project{t: t, dir: dir}
	t.Cleanup(p.cleanup)
	return p
}

func (p *project) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if m, _ := filepath.Glob(filepath.Join(p.dir, ".dflow", "nodes", "*")); len(m) > 0 {
		_, _, _ = p.runCtx(ctx, "set", "0", "--wait")
	}
	if _, err := os.Stat(filepath.Join(p.dir, ".dflow", "server.json")); err == nil {
		_, _, _ = p.runCtx(ctx, "server", "stop")
	}
	// Whatever a failed test left behind: kill every agent process group.
	nodes, _ := filepath.Glob(filepath.Join(p.dir, ".dflow", "nodes", "*", "agent.pid"))
	for _, f := range nodes {
		b, _ := os.ReadFile(f)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
}

func (p *project) runCtx(ctx context.Context, args ...string) (string, string, error) {
	cmd := p.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// run runs dflow and requires success.
func (p *project) run(args ...string) (string, string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, errOut, err := p.runCtx(ctx, args...)
	require.NoError(p.t, err, "dflow %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out, errOut)
	return out, errOut
}

// fail runs dflow and requires a failure; it returns stderr and the exit code.
func (p *project) fail(args ...string) (string, int) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, errOut, err := p.runCtx(ctx, args...)
	require.Error(p.t, err, "dflow %s should fail\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out, errOut)
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return errOut, code
}

type row struct {
	Index    int    `json:"index"`
	Address  string `json:"address"`
	State    string `json:"state"`
	ID       string `json:"id"`
	AgentURL string `json:"agent_url"`
}

func (p *project) list() []row {
	p.t.Helper()
	out, _ := p.run("list", "-o", "json")
	var rows []row
	require.NoError(p.t, json.Unmarshal([]byte(out), &rows), out)
	return rows
}

func (p *project) signer() ssh.Signer {
	p.t.Helper()
	s, err := auth.LoadOrCreateKey(filepath.Join(p.dir, ".dflow"), "test")
	require.NoError(p.t, err)
	return s
}

// agentPIDs returns the pids of live agent processes started for this project.
// waitAgents waits until the agents of n nodes (at least) have written
// their pid files: a running `set` has made that many.
func (p *project) waitAgents(n int) {
	p.t.Helper()
	require.Eventually(p.t, func() bool {
		m, _ := filepath.Glob(filepath.Join(p.dir, ".dflow", "nodes", "*", "agent.pid"))
		return len(m) >= n
	}, 60*time.Second, 10*time.Millisecond, "%d agents started", n)
}

func (p *project) agentPIDs() []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	needle := filepath.Join(p.dir, ".dflow", "nodes")
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 2 && (args[1] == "agent" || filepath.Base(args[0]) == "dflow-agent") && strings.Contains(string(b), needle) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			if st, err := os.ReadFile(filepath.Join(filepath.Dir(f), "stat")); err == nil && strings.Contains(string(st), ") Z ") {
				continue // a zombie is dead
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

func indicesOf(rows []row) []int {
	out := []int{}
	for _, r := range rows {
		out = append(out, r.Index)
	}
	return out
}

func TestProvisionEndToEnd(t *testing.T) {
	p := newProject(t, "")
	_, errOut := p.run("set", "3")
	require.Contains(t, errOut, "started the control plane", "the first command starts the control plane and says where")
	require.Regexp(t, `http://127\.0\.0\.1:\d+/namespaces/default/workflows/dflow-`, errOut, "the workflow's Web UI URL is printed")

	rows := p.list()
	require.Equal(t, []int{0, 1, 2}, indicesOf(rows))
	addrs := map[string]bool{}
	for _, r := range rows {
		require.Equal(t, "running", r.State)
		require.True(t, strings.HasPrefix(r.Address, "127."), r.Address)
		addrs[r.Address] = true
	}
	require.Len(t, addrs, 3, "three distinct addresses")
	require.Len(t, p.agentPIDs(), 3)

	// Authenticated status answers; unsigned and wrongly signed requests get 401.
	ctx := context.Background()
	for _, r := range rows {
		st, err := api.NewClient(r.AgentURL, r.ID, p.signer()).Status(ctx)
		require.NoError(t, err)
		require.Equal(t, r.Index, st.Index)
		require.Equal(t, r.Address, st.Address)
		require.NotEmpty(t, st.AgentVersion)

		resp, err := http.Get(r.AgentURL + "/v1/status")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "unsigned")

		_, other, _ := ed25519.GenerateKey(rand.Reader)
		stranger, _ := ssh.NewSignerFromKey(other)
		_, err = api.NewClient(r.AgentURL, r.ID, stranger).Status(ctx)
		require.ErrorContains(t, err, "401", "signed by a key the node does not know")
	}
	log, err := os.ReadFile(filepath.Join(p.dir, ".dflow", "nodes", "0", "agent.log"))
	require.NoError(t, err)
	require.Contains(t, string(log), "refused \"GET\" \"/v1/status\"", "refusals are logged")
	require.Contains(t, string(log), "unsigned request")
	require.Contains(t, string(log), "unknown key")

	// get prints the count.
	out, _ := p.run("get")
	require.Equal(t, "3\n", out)

	// set 1 leaves exactly node 0.
	p.run("set", "1")
	rows = p.list()
	require.Equal(t, []int{0}, indicesOf(rows))
	require.Len(t, p.agentPIDs(), 1, "the agents of destroyed nodes are gone")
	node0 := rows[0]

	// cycle gives a fresh agent at the same index and address.
	before, err := api.NewClient(node0.AgentURL, node0.ID, p.signer()).Status(ctx)
	require.NoError(t, err)
	p.run("cycle", "0")
	rows = p.list()
	require.Len(t, rows, 1)
	require.Equal(t, node0.Address, rows[0].Address)
	require.NotEqual(t, node0.ID, rows[0].ID)
	after, err := api.NewClient(rows[0].AgentURL, rows[0].ID, p.signer()).Status(ctx)
	require.NoError(t, err)
	require.NotEqual(t, before.PID, after.PID, "a fresh agent process")

	// destroy removes it from list.
	p.run("destroy", "0")
	require.Empty(t, p.list())
	require.Empty(t, p.agentPIDs())

	// The control plane reports itself and stops.
	out, _ = p.run("server", "status")
	require.Contains(t, out, "running")
	p.run("server", "stop")
	_, code := p.fail("server", "status")
	require.Equal(t, 3, code)
}

func TestBadInputChangesNothing(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		args []string
		want string
	}{
		{name: "broken yaml", yaml: "nodes:\n  agent_port: [1\n", args: []string{"set", "1"}, want: "dflow.yaml:"},
		{name: "unknown key", yaml: "backends:\n  vm_backend: local\n", args: []string{"set", "1"}, want: "dflow.yaml:3:"},
		{name: "unknown backend in file", yaml: "backends:\n  vm: nope\n", args: []string{"list"}, want: `dflow.yaml:3: unknown vm backend "nope" (known: docker, local, ssh, vagrant)`},
		{name: "unknown backend flag", args: []string{"set", "1", "--vm-backend", "nope"}, want: `--vm-backend: unknown vm backend "nope"`},
		{name: "unknown store flag", args: []string{"get", "--store", "mysql://x"}, want: `--store: unknown store backend "mysql://x"`},
		{name: "bad count", args: []string{"set", "three"}, want: "COUNT must be a whole number"},
		{name: "no such node", args: []string{"destroy", "7"}, want: "no node at index 7"},
		{name: "unknown flag", args: []string{"set", "1", "--colour"}, want: "unknown flag: --colour"},
		{name: "bad output", args: []string{"list", "-o", "xml"}, want: "-o xml: want text or json"},
		{name: "count beyond nodes.max", args: []string{"set", "100000"}, want: "set 100000: more than nodes.max (64"},
		{name: "count beyond a lower nodes.max", yaml: "nodes:\n  max: 2\n", args: []string{"set", "3"}, want: "more than nodes.max (2, dflow.yaml:3)"},
		{name: "image with the local backend", args: []string{"set", "1", "--image", "ubuntu-trusty"}, want: `--image: image "ubuntu-trusty": the local vm backend does not use an image`},
		{name: "app.env sets HOST", yaml: "app:\n  env: [HOST=0.0.0.0]\n", args: []string{"set", "1"}, want: "HOST is set by the agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProject(t, tt.yaml)
			errOut, code := p.fail(tt.args...)
			require.NotZero(t, code)
			require.Contains(t, errOut, tt.want)
			_, err := os.Stat(filepath.Join(p.dir, ".dflow", "server.json"))
			require.True(t, os.IsNotExist(err), "no control plane was started")
			require.Empty(t, p.agentPIDs(), "no node was made")
		})
	}
}

func TestOneMutationAtATime(t *testing.T) {
	p := newProject(t, "nodes:\n  parallel: 1\n")
	p.run("server", "start")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	slow := p.command(ctx, "set", "6")
	var slowErr bytes.Buffer
	slow.Stderr = &slowErr
	require.NoError(t, slow.Start())
	// Wait until the first workflow runs, then try a second.
	p.waitAgents(1)
	errOut, code := p.fail("set", "2")
	require.Equal(t, 75, code)
	require.Contains(t, errOut, "is busy with `dflow set 6`")
	require.Contains(t, errOut, "--wait")
	// --wait queues behind it.
	p.run("set", "2", "--wait")
	require.NoError(t, slow.Wait(), slowErr.String())
	require.Equal(t, []int{0, 1}, indicesOf(p.list()))
}

// TestCrashMidSet kills the control plane with SIGKILL while `set 8` is half
// done. The CLI starts it again, the same workflow finishes: exactly 8
// nodes, no duplicate index, no orphan agent.
func TestCrashMidSet(t *testing.T) {
	p := newProject(t, "nodes:\n  parallel: 1\n")
	p.run("server", "start")
	info := func() map[string]any {
		b, err := os.ReadFile(filepath.Join(p.dir, ".dflow", "server.json"))
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		return m
	}
	firstPID := int(info()["pid"].(float64))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	set := p.command(ctx, "set", "8")
	var setErr bytes.Buffer
	set.Stderr = &setErr
	require.NoError(t, set.Start())
	p.waitAgents(3)
	require.NoError(t, syscall.Kill(firstPID, syscall.SIGKILL))
	t0 := time.Now()
	require.NoError(t, set.Wait(), setErr.String())
	t.Logf("set 8 finished %s after the control plane was killed", time.Since(t0).Round(time.Millisecond))
	require.Contains(t, setErr.String(), "the control plane went away")
	require.NotEqual(t, firstPID, int(info()["pid"].(float64)), "a new control plane runs")

	rows := p.list()
	require.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7}, indicesOf(rows))
	for _, r := range rows {
		require.Equal(t, "running", r.State, "node %d", r.Index)
	}
	require.Len(t, p.agentPIDs(), 8, "one agent per node, no orphans")
}

func TestTwoProjectsAtOnce(t *testing.T) {
	a := newProject(t, "")
	b := newProject(t, "")
	a.run("set", "2")
	b.run("set", "2")
	addrs := map[string]bool{}
	for _, r := range append(a.list(), b.list()...) {
		addrs[r.Address] = true
	}
	require.Len(t, addrs, 4, "no two nodes share an address")
	sa, _ := a.run("server", "status", "-o", "json")
	sb, _ := b.run("server", "status", "-o", "json")
	var ia, ib map[string]any
	require.NoError(t, json.Unmarshal([]byte(sa), &ia))
	require.NoError(t, json.Unmarshal([]byte(sb), &ib))
	require.NotEqual(t, ia["frontend"], ib["frontend"])
	require.NotEqual(t, ia["ui"], ib["ui"])
	for _, ui := range []any{ia["ui"], ib["ui"]} {
		resp, err := http.Get(ui.(string))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
}

// TestExternalTemporalAndWorker runs project B against another Temporal
// (project A's control plane stands in for a real cluster) with its own
// `dflow worker` process: no embedded control plane is started for B.
func TestExternalTemporalAndWorker(t *testing.T) {
	a := newProject(t, "")
	a.run("server", "start")
	st, _ := a.run("server", "status", "-o", "json")
	var info map[string]any
	require.NoError(t, json.Unmarshal([]byte(st), &info))
	addr := info["frontend"].(string)

	b := newProject(t, "temporal:\n  task_queue: project-b\n")
	_, code := b.fail("worker")
	require.Equal(t, 1, code, "worker without an address is an error")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := exec.CommandContext(ctx, dflowBin, "worker", "--temporal", addr)
	w.Dir = b.dir
	var wErr bytes.Buffer
	w.Stderr = &wErr
	require.NoError(t, w.Start())
	defer func() { _ = w.Process.Signal(syscall.SIGTERM); _ = w.Wait() }()

	_, errOut := b.run("set", "2", "--temporal", addr)
	require.NotContains(t, errOut, "started the control plane")
	require.Contains(t, errOut, "workflow dflow-")
	require.Equal(t, []int{0, 1}, indicesOf(b.list()))
	_, err := os.Stat(filepath.Join(b.dir, ".dflow", "server.json"))
	require.True(t, os.IsNotExist(err), "B has no control plane of its own")
	t.Setenv("TEMPORAL_ADDRESS", addr)
	b.run("set", "0")
	require.Empty(t, b.list())
}
