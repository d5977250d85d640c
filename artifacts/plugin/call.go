package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/artifacts/internal/verify"
	"github.com/distributive-flow/dflow/backends/plugin"
)

// call runs `PLUGIN verb` with req on stdin and decodes the answer's result
// into res (nil: ignored), the way backends/plugin calls a backend plugin
// (its calls are unexported and its Open knows only the backend kinds):
// its own process group, SIGKILLed on timeout or cancel; stdout capped at
// env.MaxAnswer; the last lines of stderr quoted on failure; the errors
// wrap backends/plugin's sentinels and *plugin.Error.
func (s *Store) call(ctx context.Context, verb string, req, res any) error {
	in, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("plugin %s: %s: encode request: %w", s.path, verb, err)
	}
	timeout := s.timeout(verb)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, s.path, verb)
	if fi, err := os.Stat(s.env.Project); err == nil && fi.IsDir() {
		cmd.Dir = s.env.Project
	}
	cmd.Env = append(append(os.Environ(), s.env.Vars...),
		"DFLOW_PROTOCOL="+strconv.Itoa(plugin.Protocol), "DFLOW_EXE="+s.env.Exe,
		"DFLOW_PROJECT="+s.env.Project, "DFLOW_STATE_DIR="+s.env.StateDir)
	cmd.Stdin = bytes.NewReader(in)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	kill := func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	cmd.Cancel = func() error { kill(); return nil }
	cmd.WaitDelay = 2 * time.Second
	out := &answerBuf{max: s.env.MaxAnswer, kill: kill}
	errTail := &tailBuf{}
	cmd.Stdout, cmd.Stderr = out, errTail
	err = cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		kill() // it exited, something it left holds its output
		err = nil
	}
	var exit *exec.ExitError
	switch {
	case out.over:
		return fmt.Errorf("plugin %s: %s: %w: answer larger than %d bytes; the plugin was killed%s", s.path, verb, plugin.ErrBadAnswer, s.env.MaxAnswer, errTail)
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("plugin %s: %s: cancelled, the plugin was killed: %w", s.path, verb, ctx.Err())
	case err != nil && cctx.Err() != nil:
		return fmt.Errorf("plugin %s: %s: %w after %s; the plugin was killed%s", s.path, verb, plugin.ErrTimeout, timeout, errTail)
	case errors.As(err, &exit):
		return fmt.Errorf("plugin %s: %s: %w: %s%s", s.path, verb, plugin.ErrCrashed, exit, errTail)
	case err != nil:
		return fmt.Errorf("plugin %s: %s: cannot run it: %w", s.path, verb, err)
	}
	return s.decode(verb, out.Bytes(), res, errTail)
}

// decode checks that out is one answer and puts its result in res, or
// returns the error it holds (a *plugin.Error, also wrapping the artifact
// error its code stands for).
func (s *Store) decode(verb string, out []byte, res any, errTail *tailBuf) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("plugin %s: %s: %w: %s%s", s.path, verb, plugin.ErrBadAnswer, fmt.Sprintf(format, args...), errTail)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var a struct {
		Result json.RawMessage `json:"result"`
		Error  *plugin.Error   `json:"error"`
	}
	switch err := dec.Decode(&a); {
	case len(bytes.TrimSpace(out)) == 0:
		return bad("printed no answer")
	case err != nil:
		return bad("answer is not one JSON object {\"result\": ...} or {\"error\": ...} (%v): %.200q", err, out)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("answer holds more than one JSON value (or trailing garbage): %.200q", out)
	}
	if a.Error != nil {
		e := a.Error
		e.Plugin, e.Verb = s.path, verb
		switch e.Code {
		case CodeNotFound:
			return fmt.Errorf("%w: %w", e, artifact.ErrNotFound)
		case CodeDigestMismatch:
			return fmt.Errorf("%w: %w", e, artifact.ErrDigestMismatch)
		case CodeInvalidDigest:
			return fmt.Errorf("%w: %w", e, verify.ErrInvalidDigest)
		}
		return e
	}
	if len(a.Result) == 0 {
		return bad("answer has neither \"result\" nor \"error\": %.200q", out)
	}
	if res != nil {
		if err := json.Unmarshal(a.Result, res); err != nil {
			return bad("result does not fit (%v): %.200q", err, a.Result)
		}
	}
	return nil
}

func (s *Store) timeout(verb string) time.Duration {
	if d := s.env.Timeouts[verb]; d > 0 {
		return d
	}
	if d := DefaultTimeouts[verb]; d > 0 {
		return d
	}
	return plugin.DefaultTimeout
}

// answerBuf keeps the plugin's stdout up to max bytes; past that it kills
// the plugin and fails the write.
type answerBuf struct {
	bytes.Buffer
	max  int64
	over bool
	kill func()
}

func (b *answerBuf) Write(p []byte) (int, error) {
	if b.over || int64(b.Len()+len(p)) > b.max {
		if !b.over {
			b.over = true
			b.kill()
		}
		return 0, errors.New("answer too large")
	}
	return b.Buffer.Write(p)
}

// tailBuf keeps the last 16 KiB of the plugin's stderr; its String is
// "; last lines of stderr:\n..." (10 lines at most) or "; stderr was empty".
type tailBuf struct{ b []byte }

func (t *tailBuf) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 16<<10 {
		t.b = t.b[len(t.b)-16<<10:]
	}
	return len(p), nil
}

func (t *tailBuf) String() string {
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return "; stderr was empty"
	}
	lines := strings.Split(s, "\n")
	return "; last lines of stderr:\n" + strings.Join(lines[max(0, len(lines)-10):], "\n")
}
