package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/testsuite"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
)

// fatalError is what benchTB's Fatal panics with; runOne recovers it.
type fatalError struct{ err error }

// benchTB lets bench use testsuite's helpers (HelloRepo, ChangeHello, Git,
// CabalDir, FreePort) outside a test: a failure aborts the running benchmark.
type benchTB struct {
	testing.TB // nil: only the methods below are used
	tmp        string
}

func (t *benchTB) Helper()                           {}
func (t *benchTB) Fatal(args ...any)                 { panic(fatalError{fmt.Errorf("%s", fmt.Sprint(args...))}) }
func (t *benchTB) Fatalf(format string, args ...any) { panic(fatalError{fmt.Errorf(format, args...)}) }
func (t *benchTB) Skipf(format string, args ...any)  { panic(fatalError{fmt.Errorf(format, args...)}) }
func (t *benchTB) TempDir() string {
	d, err := os.MkdirTemp(t.tmp, "t")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// abort stops the running benchmark with err.
func abort(err error) { panic(fatalError{err}) }

// dflow runs the dflow binary in a project directory.
type dflow struct {
	bin, dir string
	env      []string // added to the environment
}

func (d dflow) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(d.bin, args...)
	cmd.Dir = d.dir
	cmd.Env = append(os.Environ(), d.env...)
	return cmd
}

// run runs dflow with args and returns its standard output and how long it took.
func (d dflow) run(args ...string) (string, float64, error) {
	cmd := d.cmd(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	err := cmd.Run()
	if err != nil {
		return out.String(), 0, fmt.Errorf("dflow %s: %v\n%s", strings.Join(args, " "), err, tail(errb.String(), 30))
	}
	return out.String(), time.Since(t0).Seconds(), nil
}

// must runs dflow with args and returns how long it took; an error aborts
// the benchmark.
func (d dflow) must(args ...string) float64 {
	_, t, err := d.run(args...)
	if err != nil {
		abort(err)
	}
	return t
}

// span is one dflow command's time span and, for a rollout, its workflow.
type span struct {
	Op       string    `json:"op"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Workflow string    `json:"workflow,omitempty"` // ID/run ID
	Version  string    `json:"version,omitempty"`
}

// rollout runs a rollout command (deploy, rollback, ...) with -o json and
// returns its span and workflow.
func (d dflow) rollout(op string, args ...string) span {
	s := span{Op: op, Start: time.Now()}
	out, _, err := d.run(append([]string{op, "-o", "json"}, args...)...)
	s.End = time.Now()
	if err != nil {
		abort(err)
	}
	var res struct {
		Release struct {
			Version  string `json:"version"`
			Workflow string `json:"workflow"`
		} `json:"release"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		abort(fmt.Errorf("dflow %s -o json: %v: %q", op, err, tail(out, 5)))
	}
	s.Workflow, s.Version = res.Release.Workflow, res.Release.Version
	return s
}

type versionsRow struct {
	Index   int    `json:"index"`
	Address string `json:"address"`
	AppURL  string `json:"app_url"`
	Serving string `json:"serving"`
}

func (d dflow) versions() []versionsRow {
	out, _, err := d.run("versions", "-o", "json")
	if err != nil {
		abort(err)
	}
	var rows []versionsRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		abort(fmt.Errorf("versions -o json: %v", err))
	}
	return rows
}

// stop removes the project's nodes and stops its control plane.
func (d dflow) stop() {
	_, _, _ = d.run("set", "0", "--wait")
	_, _, _ = d.run("server", "stop")
}

// helloProject makes a git copy of examples/hello under e.work with yaml as
// its dflow.yaml (after name and package), committed, and a dflow that
// builds it offline. Its nodes and control plane are removed at the end.
func helloProject(e *env, tb *benchTB, name, yaml string) dflow {
	testsuite.RequireCabal(tb)
	cabal := testsuite.CabalDir(tb)
	dir := testsuite.HelloRepo(tb, repoExample("hello"))
	full := fmt.Sprintf("name: bench-%s-%d\npackage: hello.cabal\n%s", name, os.Getpid(), yaml)
	if err := os.WriteFile(filepath.Join(dir, "dflow.yaml"), []byte(full), 0o644); err != nil {
		abort(err)
	}
	testsuite.Git(tb, dir, "commit", "--quiet", "--all", "--message=dflow.yaml for the benchmark")
	d := dflow{bin: e.bin, dir: dir, env: []string{"CABAL_DIR=" + cabal}}
	addCleanup(d.stop)
	return d
}

// repoExample is examples/<name> of the repository bench runs in.
func repoExample(name string) string {
	for _, dir := range []string{".", ".."} {
		p, _ := filepath.Abs(filepath.Join(dir, "examples", name))
		if _, err := os.Stat(filepath.Join(p, "dflow.yaml")); err == nil {
			return p
		}
	}
	abort(fmt.Errorf("examples/%s not found: run bench from the repository's root", name))
	return ""
}

// temporal dials the project's embedded control plane.
func (d dflow) temporal() client.Client {
	b, err := os.ReadFile(filepath.Join(d.dir, ".dflow", "server.json"))
	if err != nil {
		abort(fmt.Errorf("control plane address: %w", err))
	}
	var s struct {
		Frontend  string `json:"frontend"`
		Namespace string `json:"namespace"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		abort(fmt.Errorf("control plane address: %w", err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{
		HostPort: s.Frontend, Namespace: s.Namespace,
		Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	})
	if err != nil {
		abort(fmt.Errorf("dial the control plane at %s: %w", s.Frontend, err))
	}
	return c
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// agentPIDs are the process ids of the project's node agents.
func (d dflow) agentPIDs() []int {
	paths, _ := filepath.Glob(filepath.Join(d.dir, ".dflow", "nodes", "*", "agent.pid"))
	var pids []int
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// rssKB is VmRSS of pid in kB (0 if gone).
func rssKB(pid int) int { return statusKB(pid, "VmRSS:") }

// statusKB is a kB field of /proc/<pid>/status ("VmRSS:", "RssAnon:").
func statusKB(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			var kb int
			_, _ = fmt.Sscan(strings.TrimPrefix(l, field), &kb)
			return kb
		}
	}
	return 0
}
