package process

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/distributive-flow/dflow/filelock"
)

// Spec says what to run.
type Spec struct {
	ID      string   // instance id, unique per agent
	Dir     string   // working directory (the unpacked release)
	Command string   // absolute path of the executable
	Args    []string // arguments after the command name
	Env     []string // KEY=VALUE, added to a minimal base (PATH, HOME, LANG); not the agent's whole environment
	LogPath string   // stdout and stderr are appended here
}

// Proc is a running (or exited) app process, the leader of its own process
// group.
type Proc struct {
	spec   Spec
	pid    int
	exited chan struct{}
	err    error // the exit status; set before exited is closed
}

// BaseEnv is the environment every app starts with: PATH and HOME as the
// agent has them (or defaults), and a UTF-8 locale, which GHC's runtime needs
// to print anything but ASCII.
func BaseEnv() []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	home := os.Getenv("HOME")
	if home == "" {
		home = "/"
	}
	return []string{"PATH=" + path, "HOME=" + home, "LANG=C.UTF-8"}
}

// Start starts s and returns once the process runs.
//
// The process leads its own process group (Setpgid), so Stop signals
// everything it started. It gets SIGKILL when the agent dies (Pdeathsig),
// even by kill -9. Linux sends the parent-death signal when the thread that
// forked the child exits, not the process: the Go runtime may end an idle
// thread at any time. So the child is started from a goroutine locked to its
// OS thread (runtime.LockOSThread) which then waits for the child; the
// thread lives exactly as long as the child. Only the direct child gets the
// signal: an app that forks helpers must see to them itself (Stop kills the
// whole group).
func Start(s Spec) (*Proc, error) {
	if !filepath.IsAbs(s.Command) {
		return nil, fmt.Errorf("start process %s: command %q is not an absolute path", s.ID, s.Command)
	}
	if err := os.MkdirAll(filepath.Dir(s.LogPath), 0o755); err != nil {
		return nil, fmt.Errorf("start process %s: %w", s.ID, err)
	}
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start process %s: open log: %w", s.ID, err)
	}
	cmd := exec.Command(s.Command, s.Args...)
	cmd.Dir = s.Dir
	cmd.Env = append(BaseEnv(), s.Env...) // later entries win
	cmd.Stdin = nil                       // /dev/null
	cmd.Stdout, cmd.Stderr = logf, logf   // an *os.File goes to the child as is: no copying goroutine
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	p := &Proc{spec: s, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine ends, the runtime ends the
		// thread too, which is what we want once the child has exited.
		runtime.LockOSThread()
		err := cmd.Start()
		_ = logf.Close() // the child has its own copy
		if err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start process %s: %w", s.ID, err)
	}
	return p, nil
}

// PID is the process id (and process group id).
func (p *Proc) PID() int { return p.pid }

// Spec is what the process was started with.
func (p *Proc) Spec() Spec { return p.spec }

// Exited is closed once the process has exited and been reaped.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// ExitErr is the exit status once Exited is closed: nil for exit code 0,
// an *exec.ExitError otherwise ("exit status 1", "signal: killed"). Before
// the process has exited it is nil.
func (p *Proc) ExitErr() error {
	select {
	case <-p.exited:
		return p.err
	default:
		return nil
	}
}

// Stop sends SIGTERM to the process group, waits up to grace for the process
// to exit, then SIGKILLs the group and reaps it. Whatever is left in the
// group after the leader exited is killed too. It is safe to call twice,
// concurrently (a second call with a shorter grace kills sooner), and after
// the process exited on its own. Its error is about signalling, never the
// app's exit status (see ExitErr).
func (p *Proc) Stop(grace time.Duration) error {
	select {
	case <-p.exited:
		killGroup(p.pid, syscall.SIGKILL) // stragglers
		return nil
	default:
	}
	if err := killGroup(p.pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop process %s (pid %d): %w", p.spec.ID, p.pid, err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
	}
	if err := killGroup(p.pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("stop process %s (pid %d): %w", p.spec.ID, p.pid, err)
	}
	<-p.exited
	return nil
}

// killGroup signals the process group pgid; a group that is gone is no
// error.
func killGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return fmt.Errorf("refusing to signal process group %d", pgid)
	}
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("send %s to group %d: %w", sig, pgid, err)
	}
	return nil
}

// FreePort returns a TCP port that was free on all interfaces a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

// Tail is the last n lines of the log file at path ("" when unreadable).
func Tail(path string, n int) string { return filelock.Tail(path, n) }
