package build

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TailLines is how many lines of a tool's output a failure's error ends with.
const TailLines = 30

// Runner runs tools in Dir with Env (the whole environment), teeing their
// standard output and error to Log.
type Runner struct {
	Dir   string
	Env   []string
	Log   io.Writer // nil discards
	Quiet bool      // do not tee to Log (git plumbing)
}

// Run runs name with args and returns its standard output. Both standard
// output and standard error go to the log and to a tail kept for the error; a
// failure's error ends with the tail. A cancelled ctx kills the tool's whole
// process group (cabal runs ghc, ghc runs gcc and ld).
func (r Runner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = r.Dir
	cmd.Env = r.Env
	out := &output{}
	if !r.Quiet {
		out.log = r.Log
	}
	var stdout bytes.Buffer
	cmd.Stdout = io.MultiWriter(&stdout, out)
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return stdout.Bytes(), fmt.Errorf("%s %s: %w%s", name, strings.Join(args, " "), err, out.tail())
}

// output is where a tool's standard output and error go: the log, and a
// buffer that keeps roughly the last lines. Safe for the two writers exec
// uses at once.
type output struct {
	mu  sync.Mutex
	log io.Writer
	buf []byte
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.log != nil {
		o.log.Write(p) // a failing log must not fail the build
	}
	o.buf = append(o.buf, p...)
	const keep = 16 << 10
	if len(o.buf) > 2*keep {
		o.buf = append([]byte(nil), o.buf[len(o.buf)-keep:]...)
	}
	return len(p), nil
}

// tail is "\n" and the last TailLines lines of the output, or "" if there
// was none.
func (o *output) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := strings.TrimRight(string(o.buf), "\n")
	if strings.TrimSpace(s) == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > TailLines {
		lines = lines[len(lines)-TailLines:]
	}
	return "\n" + strings.Join(lines, "\n")
}

// LastLine is the last non-empty line of out, trimmed.
func LastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
