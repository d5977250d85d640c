package process_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent/process"
	"github.com/distributive-flow/dflow/agent/process/fakeapp"
	"github.com/stretchr/testify/require"
)

// supervisorEnv makes the test binary act as a tiny agent: it starts the
// fake app with process.Start, prints the app's pid and waits to be killed.
const supervisorEnv = "DFLOW_TEST_SUPERVISOR"

func TestMain(m *testing.M) {
	fakeapp.ServeIfAsked()
	if os.Getenv(supervisorEnv) == "1" {
		superviseForever()
	}
	os.Exit(m.Run())
}

func superviseForever() {
	port, err := process.FreePort()
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	exe, _ := os.Executable()
	p, err := process.Start(process.Spec{
		ID:      "orphan-candidate",
		Dir:     os.TempDir(),
		Command: exe,
		Env:     []string{fakeapp.Env + "=1", "PORT=" + strconv.Itoa(port)},
		LogPath: os.Getenv("DFLOW_TEST_LOG"),
	})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(p.PID())
	select {}
}

type app struct {
	proc *process.Proc
	port int
	log  string
}

func startApp(t *testing.T, env ...string) app {
	t.Helper()
	port, err := process.FreePort()
	require.NoError(t, err)
	dir := t.TempDir()
	log := filepath.Join(dir, "logs", "app.log")
	exe, err := os.Executable()
	require.NoError(t, err)
	p, err := process.Start(process.Spec{
		ID:      t.Name(),
		Dir:     dir,
		Command: exe,
		Args:    []string{"-test.run=^$"},
		Env:     append([]string{fakeapp.Env + "=1", "PORT=" + strconv.Itoa(port), "DFLOW_VERSION=v1"}, env...),
		LogPath: log,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(time.Second) })
	require.Greater(t, p.PID(), 1)
	return app{p, port, log}
}

func (a app) healthProbe() process.Probe {
	return process.HTTPProbe(fmt.Sprintf("http://127.0.0.1:%d/health", a.port))
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestGatePassesAndEnvAndLog(t *testing.T) {
	a := startApp(t, "GREETING=hello world")
	err := process.Gate(context.Background(), a.proc, a.healthProbe(), process.GateOptions{Probes: 3, Interval: 20 * time.Millisecond, Timeout: 10 * time.Second})
	require.NoError(t, err)
	require.NoError(t, process.Gate(context.Background(), a.proc, process.TCPProbe(fmt.Sprintf("127.0.0.1:%d", a.port)), process.GateOptions{}))

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/env", a.port))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	env := strings.Split(strings.TrimSpace(string(body)), "\n")
	require.Contains(t, env, "PORT="+strconv.Itoa(a.port))
	require.Contains(t, env, "GREETING=hello world")
	require.Contains(t, env, "LANG=C.UTF-8")
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		require.Contains(t, []string{"PATH", "HOME", "LANG", "PORT", "GREETING", "DFLOW_VERSION", fakeapp.Env}, k, "the app sees only the base and the spec's environment")
	}

	require.NoError(t, a.proc.Stop(5*time.Second))
	require.NoError(t, a.proc.Stop(5*time.Second), "stop twice")
	<-a.proc.Exited()
	require.NoError(t, a.proc.ExitErr(), "the fake app exits 0 on SIGTERM")
	tail := process.Tail(a.log, 20)
	require.Contains(t, tail, "listening on port "+strconv.Itoa(a.port))
	require.Contains(t, tail, "stopping")
	require.False(t, alive(a.proc.PID()))
}

func TestGateFailsOnUnhealthy(t *testing.T) {
	a := startApp(t, "DFLOW_FAKE_HEALTH=fail")
	started := time.Now()
	err := process.Gate(context.Background(), a.proc, a.healthProbe(), process.GateOptions{Interval: 20 * time.Millisecond, Timeout: time.Second})
	var ge *process.GateError
	require.ErrorAs(t, err, &ge)
	require.Less(t, time.Since(started), 3*time.Second)
	require.Equal(t, fmt.Sprintf("GET http://127.0.0.1:%d/health", a.port), ge.Probe)
	require.Contains(t, ge.Reason, "503")
	require.Contains(t, ge.Reason, "unhealthy on purpose")
	require.Contains(t, err.Error(), ge.Probe)
}

func TestGateFailsFastWhenProcessExits(t *testing.T) {
	a := startApp(t, "DFLOW_FAKE_EXIT=3")
	started := time.Now()
	err := process.Gate(context.Background(), a.proc, a.healthProbe(), process.GateOptions{Timeout: 30 * time.Second})
	var ge *process.GateError
	require.ErrorAs(t, err, &ge)
	require.Less(t, time.Since(started), 5*time.Second)
	require.Contains(t, ge.Reason, "exit status 3")
	require.NoError(t, a.proc.Stop(time.Second), "stop after the process exited on its own")
	require.Contains(t, process.Tail(a.log, 5), "exiting with status 3")
}

func TestGateContextCanceled(t *testing.T) {
	a := startApp(t, "DFLOW_FAKE_HEALTH=fail")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := process.Gate(ctx, a.proc, a.healthProbe(), process.GateOptions{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var ge *process.GateError
	require.False(t, errors.As(err, &ge))
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	a := startApp(t, "DFLOW_FAKE_IGNORE_TERM=1")
	require.NoError(t, process.Gate(context.Background(), a.proc, a.healthProbe(), process.GateOptions{Interval: 20 * time.Millisecond}))
	started := time.Now()
	require.NoError(t, a.proc.Stop(300*time.Millisecond))
	took := time.Since(started)
	require.GreaterOrEqual(t, took, 300*time.Millisecond, "SIGTERM was ignored: Stop waits the grace")
	require.Less(t, took, 3*time.Second)
	require.ErrorContains(t, a.proc.ExitErr(), "killed")
	require.False(t, alive(a.proc.PID()))
}

func TestStartRefusesRelativeCommand(t *testing.T) {
	_, err := process.Start(process.Spec{ID: "x", Command: "bin/app", LogPath: filepath.Join(t.TempDir(), "x.log")})
	require.ErrorContains(t, err, "not an absolute path")
	_, err = process.Start(process.Spec{ID: "x", Command: "/nonexistent/app", LogPath: filepath.Join(t.TempDir(), "x.log")})
	require.ErrorContains(t, err, "start process x")
}

// TestPdeathsig kills -9 a supervisor that started the fake app with
// process.Start: the app must die with it.
func TestPdeathsig(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), supervisorEnv+"=1", "DFLOW_TEST_LOG="+filepath.Join(t.TempDir(), "app.log"))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err, "supervisor said %q", line)
	require.True(t, alive(pid))

	// Let the supervisor's runtime settle (idle threads may be retired) so
	// a parent-death signal tied to the wrong thread would show.
	time.Sleep(200 * time.Millisecond)
	require.True(t, alive(pid), "the app died while its supervisor lived")

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	deadline := time.Now().Add(2 * time.Second)
	for alive(pid) && !zombieOrGone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("app %d outlived its supervisor by 2s", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// zombieOrGone: the orphaned app is reparented to init (or a subreaper),
// which may not have reaped it yet; a zombie is dead.
func zombieOrGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestFreePort(t *testing.T) {
	p, err := process.FreePort()
	require.NoError(t, err)
	require.Greater(t, p, 0)
}
