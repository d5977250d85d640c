package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestConfigValidateAndShow: config validate reports every problem at once
// with its line and exits 1 (0 for a valid file), starting nothing; config
// show prints every setting with where it came from: the file, a flag, the
// environment or the default.
func TestConfigValidateAndShow(t *testing.T) {
	t.Parallel()
	p := newProject(t, "imagee: debian\nnodes:\n  parallel: 0\n  agent_port: abc\napp:\n  mode: sideways\n")
	errOut, code := p.fail("config", "validate")
	require.Equal(t, 1, code, errOut)
	out, _, _ := p.runCtx(t.Context(), "config", "validate")
	require.Contains(t, out, `dflow.yaml:2: unknown key "imagee" (did you mean image?)`)
	require.Contains(t, out, `dflow.yaml:4: nodes.parallel: 0 is out of range`)
	require.Contains(t, out, `dflow.yaml:5: nodes.agent_port: want a whole number, got "abc"`)
	require.Contains(t, out, `dflow.yaml:7: app.mode: unknown mode "sideways"`)
	require.Contains(t, out, "4 problems")
	out, _, _ = p.runCtx(t.Context(), "config", "validate", "-o", "json")
	var problems []struct {
		File    string `json:"file"`
		Line    int    `json:"line"`
		Key     string `json:"key"`
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &problems), out)
	require.Len(t, problems, 4)
	require.Equal(t, 2, problems[0].Line)
	_, err := os.Stat(filepath.Join(p.dir, ".dflow", "server.json"))
	require.True(t, os.IsNotExist(err), "validate starts no control plane")

	b, err := os.ReadFile(filepath.Join(p.dir, "dflow.yaml"))
	require.NoError(t, err)
	fixed := firstLine(b) + "\nnodes:\n  parallel: 2\n" // the name line, and a good value
	require.NoError(t, os.WriteFile(filepath.Join(p.dir, "dflow.yaml"), []byte(fixed), 0o644))
	out, _ = p.run("config", "validate")
	require.Contains(t, out, "dflow.yaml: valid")

	p.env = append(p.env, "TEMPORAL_ADDRESS=127.0.0.1:7999")
	out, _ = p.run("config", "show", "--vm-backend", "docker", "-o", "json")
	var settings []struct{ Key, Value, Source string }
	require.NoError(t, json.Unmarshal([]byte(out), &settings), out)
	from := map[string][2]string{}
	for _, s := range settings {
		from[s.Key] = [2]string{s.Value, s.Source}
	}
	require.Equal(t, [2]string{"2", "dflow.yaml:3"}, from["nodes.parallel"])
	require.Equal(t, [2]string{"docker", "--vm-backend"}, from["backends.vm"])
	require.Equal(t, [2]string{"127.0.0.1:7999", "TEMPORAL_ADDRESS"}, from["temporal.address"])
	require.Equal(t, [2]string{"1", "default"}, from["repair.max_unavailable"])

	// The backend flags are every command's: the same flags for a session.
	p.run("releases", "--container-backend", "process", "--builder", "cabal", "--package-reader", "cabal", "--store", "embedded")
	p.run("list", "--image", "", "--keys", "")
}

func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b)
}

// TestBadInputStartsNothing: every command checks what it can before
// anything starts: bad input exits 2 with one line naming the input and
// what is wrong, and no control plane (so no workflow) is started.
func TestBadInputStartsNothing(t *testing.T) {
	t.Parallel()
	p := newProject(t, "")
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"copy", "--version", "deadbeefcafe"}, "copy: no build of version deadbeefcafe is kept"},
		{[]string{"copy", "--latest"}, "copy: nothing was built yet: run dflow build"},
		{[]string{"deploy", "--commit-hash", "0123456789"}, "--commit-hash: "},
		{[]string{"build", "--commit-hash", "--oops"}, "is not a commit"},
		{[]string{"rollback"}, "rollback: "},
		{[]string{"set", "3", "--keys", "/nonexistent/keys"}, "keys /nonexistent/keys"},
		{[]string{"set", "3", "--vm-backend", "nosuch"}, `unknown vm backend "nosuch"`},
		{[]string{"set", "100000"}, "more than nodes.max"},
		{[]string{"deploy", "--rollout", "0"}, "--rollout 0"},
		{[]string{"set", "--bogus", "1"}, "dflow set: unknown flag: --bogus"},
		{[]string{"repair", "--interval", "5s"}, "--interval goes with --watch"},
	}
	refused := func() {
		t.Helper()
		for _, tt := range bad {
			errOut, code := p.fail(tt.args...)
			require.Equal(t, 2, code, "dflow %v: %s", tt.args, errOut)
			require.Contains(t, errOut, tt.want, "dflow %v", tt.args)
			require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "one line: %q", errOut)
		}
	}
	refused()
	_, err := os.Stat(filepath.Join(p.dir, ".dflow", "server.json"))
	require.True(t, os.IsNotExist(err), "no control plane was started, so no workflow was made")

	yaml := filepath.Join(p.dir, "dflow.yaml")
	good, err := os.ReadFile(yaml)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(yaml, []byte("nodes:\n  parallel: lots\n"), 0o644))
	errOut, code := p.fail("set", "1")
	require.Equal(t, 2, code, errOut)
	require.Contains(t, errOut, "dflow.yaml:2: nodes.parallel")
	require.NoError(t, os.WriteFile(yaml, good, 0o644))

	// With a cluster and its control plane there: every input above is
	// still bad (nothing was built, so there is no version to copy and no
	// release to roll back to; the project is no git repository), and
	// the Temporal visibility API lists no new workflow.
	p.run("set", "1")
	before := -1
	require.Eventually(t, func() bool { // the same count twice: set's workflows are all listed
		n := workflowCount(t, p)
		stable := n > 0 && n == before
		before = n
		return stable
	}, 10*time.Second, 300*time.Millisecond, "set's workflow is listed")
	refused()
	require.Never(t, func() bool { return workflowCount(t, p) != before }, 2*time.Second, 200*time.Millisecond,
		"a bad input started a workflow (%d before)", before)
}

// TestBackendsRemembered: a cluster keeps the backends it was made with:
// later commands need no flags, and a flag that contradicts its nodes'
// backend is refused (exit 2) before anything starts.
func TestBackendsRemembered(t *testing.T) {
	t.Parallel()
	p := newProject(t, "")
	p.run("set", "1", "--builder", "stack")
	out, _ := p.run("config", "show", "-o", "json")
	var settings []struct{ Key, Value, Source string }
	require.NoError(t, json.Unmarshal([]byte(out), &settings), out)
	for _, s := range settings {
		if s.Key == "backends.builder" {
			require.Equal(t, "stack", s.Value, "remembered: no flag needed")
			require.Equal(t, "the cluster's state", s.Source)
		}
	}
	errOut, code := p.fail("list", "--vm-backend", "docker")
	require.Equal(t, 2, code, errOut)
	require.Contains(t, errOut, "--vm-backend: backends.vm docker: cluster")
	require.Contains(t, errOut, "were made with backends.vm local")
	p.run("set", "0")
	out, _ = p.run("config", "show", "--vm-backend", "docker")
	require.Contains(t, out, "--vm-backend", "with no nodes left, the backend may change")
}
