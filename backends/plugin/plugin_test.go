package plugin_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent/process/fakeapp"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/plugin"
	"github.com/distributive-flow/dflow/backends/store/embedded"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// TestMain makes the test binary three things besides the tests:
//   - `TESTBIN agent --dir ...`: the node agent, as `$DFLOW_EXE agent` is for
//     the VM plugins under test (DFLOW_EXE is this binary);
//   - with DFLOW_TEST_STORE_PLUGIN=1: a store plugin serving the embedded
//     (bbolt) store at $DFLOW_STATE_DIR/store.db through plugin.Serve;
//   - with DFLOW_TEST_CONTAINER_PLUGIN=1: a container plugin serving the
//     process container backend (container_test.go);
//   - with DFLOW_FAKE_APP=1: the app the container suite runs;
//   - otherwise the tests.
func TestMain(m *testing.M) {
	fakeapp.ServeIfAsked()
	serveContainerPluginIfAsked()
	if len(os.Args) > 1 && os.Args[1] == "agent" {
		os.Args = append(os.Args[:1], os.Args[2:]...)
		os.Setenv("DFLOW_TEST_AGENT", "1")
	}
	testsuite.ServeAgentIfAsked()
	if os.Getenv("DFLOW_TEST_STORE_PLUGIN") == "1" {
		st, err := embedded.Open(filepath.Join(os.Getenv("DFLOW_STATE_DIR"), "store.db"))
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(plugin.Serve(context.Background(), "test-store", plugin.Handlers{Store: st}, os.Args[1:], os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

func testBinary(t *testing.T) string {
	exe, err := os.Executable()
	require.NoError(t, err)
	return exe
}

// script writes an executable bash script answering describe for kinds and
// running body for every other verb ($1 is the verb, the request on stdin).
func script(t *testing.T, kinds string, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plugin.sh")
	src := `#!/usr/bin/env bash
if [ "$1" = describe ]; then cat >/dev/null; echo '{"result":{"protocol":1,"name":"fake","kinds":[` + kinds + `]}}'; exit 0; fi
` + body + "\n"
	require.NoError(t, os.WriteFile(path, []byte(src), 0o755))
	return path
}

func open(t *testing.T, path, kind string, env plugin.Env) *plugin.Plugin {
	t.Helper()
	p, err := plugin.Open(path, kind, env)
	require.NoError(t, err)
	return p
}

func TestIsPlugin(t *testing.T) {
	for v, want := range map[string]bool{
		"local": false, "embedded": false, "cabal": false, "": false,
		"./my-vm": true, "/opt/x/store": true, "plugins/vm": true, "../vm.sh": true,
		"etcd://10.0.0.1:2379": false, "etcd://h:1/prefix": false,
	} {
		require.Equal(t, want, plugin.IsPlugin(v), v)
	}
}

func TestMissingOrNotExecutable(t *testing.T) {
	dir := t.TempDir()
	_, err := plugin.Open(filepath.Join(dir, "nope"), plugin.KindVM, plugin.Env{})
	require.ErrorIs(t, err, plugin.ErrRefused)
	require.ErrorContains(t, err, filepath.Join(dir, "nope")+": refused: no such file")

	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644))
	_, err = plugin.Open(plain, plugin.KindVM, plugin.Env{})
	require.ErrorContains(t, err, plain+": refused: not executable")

	_, err = plugin.Open(dir, plugin.KindVM, plugin.Env{})
	require.ErrorContains(t, err, "is a directory")

	// Executable bit but not a program the kernel can run.
	junk := filepath.Join(dir, "junk")
	require.NoError(t, os.WriteFile(junk, []byte("\x00\x01\x02"), 0o755))
	_, err = plugin.Open(junk, plugin.KindVM, plugin.Env{})
	require.ErrorContains(t, err, junk+": describe: cannot run it")
}

func TestRelativePathIsResolvedAgainstTheProject(t *testing.T) {
	p := script(t, `"vm"`, `echo '{"result":[]}'`)
	got := open(t, filepath.Base(p), plugin.KindVM, plugin.Env{Project: filepath.Dir(p)})
	require.Equal(t, p, got.Path())
}

func TestDescribeIsCheckedAndCached(t *testing.T) {
	_, err := plugin.Open(script(t, `"vm"`, ""), plugin.KindStore, plugin.Env{})
	require.ErrorIs(t, err, plugin.ErrRefused)
	require.ErrorContains(t, err, "does not offer a store backend (it offers: vm)")

	dir := t.TempDir()
	v2 := filepath.Join(dir, "v2")
	require.NoError(t, os.WriteFile(v2, []byte(`#!/bin/sh
echo '{"result":{"protocol":2,"name":"future","kinds":["vm"]}}'
`), 0o755))
	_, err = plugin.Open(v2, plugin.KindVM, plugin.Env{})
	require.ErrorContains(t, err, v2+": refused: speaks protocol 2; this dflow speaks 1")

	counter := filepath.Join(dir, "count")
	counted := filepath.Join(dir, "counted")
	src := `#!/bin/sh
echo x >>` + counter + `
echo '{"result":{"protocol":1,"kinds":["vm"]}}'
`
	require.NoError(t, os.WriteFile(counted, []byte(src), 0o755))
	p := open(t, counted, plugin.KindVM, plugin.Env{})
	require.Equal(t, "counted", p.Description().Name, "name defaults to the file's")
	open(t, counted, plugin.KindVM, plugin.Env{})
	b, _ := os.ReadFile(counter)
	require.Equal(t, 1, strings.Count(string(b), "x"), "describe ran once")
	later := time.Now().Add(time.Hour)
	require.NoError(t, os.Chtimes(counted, later, later))
	open(t, counted, plugin.KindVM, plugin.Env{})
	b, _ = os.ReadFile(counter)
	require.Equal(t, 2, strings.Count(string(b), "x"), "a changed file is described again")
}

func TestCrashIsReported(t *testing.T) {
	path := script(t, `"vm"`, `echo "line one" >&2; echo "disk on fire" >&2; exit 3`)
	_, err := open(t, path, plugin.KindVM, plugin.Env{}).VM().List(context.Background())
	require.ErrorIs(t, err, plugin.ErrCrashed)
	require.ErrorContains(t, err, "plugin "+path+": vm.list: crashed: exit status 3; last lines of stderr:\nline one\ndisk on fire")
	require.False(t, plugin.Permanent(err))

	path = script(t, `"vm"`, `echo "about to die" >&2; kill -KILL $$`)
	_, err = open(t, path, plugin.KindVM, plugin.Env{}).VM().List(context.Background())
	require.ErrorContains(t, err, "plugin "+path+": vm.list: crashed: killed by signal 9 (killed); last lines of stderr:\nabout to die")

	// A crashed describe is a refusal to open, with the same details.
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(bad, []byte("#!/bin/sh\necho 'syntax error' >&2\nexit 1\n"), 0o755))
	_, err = plugin.Open(bad, plugin.KindVM, plugin.Env{})
	require.ErrorContains(t, err, "plugin "+bad+": describe: crashed: exit status 1; last lines of stderr:\nsyntax error")
}

// gone waits until no process has pid.
func gone(t *testing.T, pidFile string) {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	}, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		// A zombie is dead too (nobody may reap it in a container).
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		return len(f) > 0 && f[0] == "Z"
	}, 5*time.Second, 10*time.Millisecond, "pid %d still runs", pid)
}

func TestHangIsKilledAfterTheVerbTimeout(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	path := script(t, `"vm"`, `echo "thinking..." >&2; sleep 1000 & echo $! >`+pidFile+`; wait`)
	p := open(t, path, plugin.KindVM, plugin.Env{Timeouts: map[string]time.Duration{"vm.list": 300 * time.Millisecond}})
	start := time.Now()
	_, err := p.VM().List(context.Background())
	require.ErrorIs(t, err, plugin.ErrTimeout)
	require.ErrorContains(t, err, "plugin "+path+": vm.list: timed out after 300ms; the plugin was killed; last lines of stderr:\nthinking...")
	require.Less(t, time.Since(start), 3*time.Second)
	gone(t, pidFile) // the whole process group, not only the script

	// The context is honoured too.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = open(t, path, plugin.KindVM, plugin.Env{}).VM().List(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "vm.list: cancelled, the plugin was killed")

	// describe has a timeout of its own.
	dir := t.TempDir()
	slow := filepath.Join(dir, "slow")
	require.NoError(t, os.WriteFile(slow, []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755))
	_, err = plugin.Open(slow, plugin.KindVM, plugin.Env{Timeouts: map[string]time.Duration{"describe": 200 * time.Millisecond}})
	require.ErrorIs(t, err, plugin.ErrTimeout)
	require.ErrorContains(t, err, "describe: timed out after 200ms")
}

func TestLeftoverChildHoldingStdoutIsKilled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	path := script(t, `"vm"`, `sleep 1000 & echo $! >`+pidFile+`; echo '{"result":[]}'`)
	start := time.Now()
	ns, err := open(t, path, plugin.KindVM, plugin.Env{}).VM().List(context.Background())
	require.NoError(t, err)
	require.Empty(t, ns)
	require.Less(t, time.Since(start), 5*time.Second)
	gone(t, pidFile)
}

func TestBadAnswers(t *testing.T) {
	for _, c := range []struct{ name, body, want string }{
		{"nothing", `true`, "vm.list: bad answer: printed no answer; stderr was empty"},
		{"garbage", `echo "hello world"; echo oops >&2`, `vm.list: bad answer: answer is not JSON (invalid character 'h' looking for beginning of value): "hello world"; last lines of stderr:` + "\noops"},
		{"two values", `echo '{"result":[]}{"result":[]}'`, "answer holds more than one JSON value"},
		{"trailing garbage", `echo '{"result":[]} }'`, "answer holds more than one JSON value (or trailing garbage)"},
		{"truncated", `printf '{"result":['`, "answer is not JSON"},
		{"not an object", `echo '[1,2]'`, `answer is not an object {"result": ...} or {"error": ...}`},
		{"neither", `echo '{"foo":1}'`, `answer has neither "result" nor "error"`},
		{"wrong shape", `echo '{"result":{"index":"x"}}'`, "vm.list: bad answer: result does not fit"},
		{"huge", `yes`, "vm.list: bad answer: answer larger than 64 MiB; the plugin was killed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := script(t, `"vm"`, c.body)
			_, err := open(t, path, plugin.KindVM, plugin.Env{}).VM().List(context.Background())
			require.ErrorIs(t, err, plugin.ErrBadAnswer)
			require.ErrorContains(t, err, "plugin "+path+": vm.list: ")
			require.ErrorContains(t, err, c.want)
		})
	}
	// Results that parse but break the contract.
	path := script(t, `"vm"`, `echo '{"result":{"index":4,"id":"x","address":"a","agent_url":"http://a"}}'`)
	_, err := open(t, path, plugin.KindVM, plugin.Env{}).VM().Create(context.Background(), deploy.NodeSpec{Index: 1})
	require.ErrorContains(t, err, "vm.create: bad answer: asked for node 1, answered node 4")
}

func TestErrorAnswers(t *testing.T) {
	path := script(t, `"store"`, `case $1 in
store.save) echo '{"error":{"message":"revision 3 is stale","code":"conflict","retryable":true}}' ;;
store.add) echo '{"error":{"message":"index 2 holds n-7","code":"index_taken"}}' ;;
*) echo '{"error":{"message":"no such bucket"}}' ;;
esac`)
	st := open(t, path, plugin.KindStore, plugin.Env{}).Store()
	ctx := context.Background()
	err := st.Save(ctx, deploy.State{Revision: 3})
	require.ErrorIs(t, err, backends.ErrConflict)
	require.EqualError(t, err, "plugin "+path+": store.save: revision 3 is stale (conflict)")
	require.False(t, plugin.Permanent(err))
	_, err = st.Add(ctx, deploy.Node{Index: 2, ID: "n-8"})
	require.ErrorIs(t, err, backends.ErrIndexTaken)
	_, err = st.Load(ctx)
	require.EqualError(t, err, "plugin "+path+": store.load: no such bucket")
	require.True(t, plugin.Permanent(err), "retryable defaults to false")
}

func TestEnvironmentAndReader(t *testing.T) {
	project := t.TempDir()
	path := script(t, `"reader","vm"`, `req=$(cat)
printf '{"result":{"package":"%s|%s|%s|%s|%s|%s|%s","file":%s}}\n' "$DFLOW_PROTOCOL" "$DFLOW_EXE" "$DFLOW_PROJECT" "$DFLOW_STATE_DIR" "$DFLOW_AGENT_PORT" "$PWD" "$EXTRA" "$(printf '%s' "$req" | sed 's/.*"path":\("[^"]*"\).*/\1/')"`)
	p := open(t, path, plugin.KindReader, plugin.Env{Exe: "/usr/bin/dflow", Project: project, AgentPort: 7123, Vars: []string{"EXTRA=yes"}})
	d, err := p.Reader().Read(context.Background(), "/src/hello.cabal")
	require.NoError(t, err)
	require.Equal(t, "1|/usr/bin/dflow|"+project+"|"+filepath.Join(project, ".dflow")+"|7123|"+project+"|yes", d.Package)
	require.Equal(t, "/src/hello.cabal", d.File)
}

func TestBuilder(t *testing.T) {
	path := script(t, `"builder"`, `req=$(cat)
echo "compiling hello" >&2
dir=$(printf '%s' "$req" | sed 's/.*"work_dir":"\([^"]*\)".*/\1/')
echo bundle >"$dir/out.tar.zst"
echo '{"result":{"package":"hello","version":"abc","digest":"d1","size":7,"artifacts":[{"kind":"executable","name":"hello","path":"bin/hello","sha256":"s","size":1}],"built_at":"2026-11-24T12:00:00Z","build_seconds":1.5,"bundle_path":"out.tar.zst"}}'`)
	work := t.TempDir()
	var log bytes.Buffer
	tg, err := open(t, path, plugin.KindBuilder, plugin.Env{}).Builder().Build(context.Background(),
		deploy.TargetDesc{Package: "hello"}, backends.BuildOptions{Dir: work, Targets: []string{deploy.KindExecutable}, WorkDir: work, Log: &log})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(work, "out.tar.zst"), tg.BundlePath)
	require.Equal(t, "d1", tg.Digest)
	require.Equal(t, "hello", tg.Artifacts[0].Name)
	require.Equal(t, "compiling hello\n", log.String(), "stderr goes to the build log")

	missing := script(t, `"builder"`, `echo '{"result":{"package":"hello","digest":"d","bundle_path":"/nonexistent/b.tar.zst"}}'`)
	_, err = open(t, missing, plugin.KindBuilder, plugin.Env{}).Builder().Build(context.Background(), deploy.TargetDesc{}, backends.BuildOptions{WorkDir: work})
	require.ErrorContains(t, err, "builder.build: bad answer: bundle_path /nonexistent/b.tar.zst does not exist")
}
