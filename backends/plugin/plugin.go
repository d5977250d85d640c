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
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/distributive-flow/dflow/backends"
)

// Protocol is the version of the plugin protocol this dflow speaks.
const Protocol = 1

// The backend kinds a plugin can offer (describe's "kinds").
const (
	KindVM        = "vm"
	KindStore     = "store"
	KindReader    = "reader"
	KindBuilder   = "builder"
	KindContainer = "container"
)

// Error codes a plugin can answer with; see docs/plugins.md.
const (
	CodeConflict    = "conflict"     // backends.ErrConflict
	CodeIndexTaken  = "index_taken"  // backends.ErrIndexTaken
	CodeNotReady    = "not_ready"    // backends.ErrNotReady
	CodeUnknownVerb = "unknown_verb" // the plugin does not implement the verb
)

// DefaultMaxAnswer caps what a plugin may print on stdout.
const DefaultMaxAnswer = 64 << 20

// DefaultTimeouts bound each call, by verb; Env.Timeouts overrides them.
// A verb not listed gets DefaultTimeout.
var DefaultTimeouts = map[string]time.Duration{
	"describe":      10 * time.Second,
	"vm.create":     5 * time.Minute,
	"vm.destroy":    2 * time.Minute,
	"vm.list":       30 * time.Second,
	"store.load":    30 * time.Second,
	"store.save":    30 * time.Second,
	"store.add":     30 * time.Second,
	"store.remove":  30 * time.Second,
	"reader.read":   time.Minute,
	"builder.build": 2 * time.Hour,
	// An image build; a start's readiness gate; a drain and a grace.
	"container.containerize": 30 * time.Minute,
	"container.start":        10 * time.Minute,
	"container.stop":         10 * time.Minute,
}

// DefaultTimeout bounds a call whose verb has no timeout of its own.
const DefaultTimeout = time.Minute

// waitDelay is how long dflow waits, after the plugin exits, for whatever it
// left behind to close its stdout and stderr before killing its group.
const waitDelay = 2 * time.Second

// Sentinel errors for the ways a call can break; the errors returned wrap
// them, with the plugin path and verb in front.
var (
	// ErrCrashed: the plugin exited non-zero or died of a signal.
	ErrCrashed = errors.New("crashed")
	// ErrTimeout: the plugin ran past its verb's timeout and was killed.
	ErrTimeout = errors.New("timed out")
	// ErrBadAnswer: the plugin's stdout was not one well-formed answer.
	ErrBadAnswer = errors.New("bad answer")
	// ErrRefused: dflow will not use the plugin (missing, not executable,
	// another protocol, does not offer the kind asked for).
	ErrRefused = errors.New("refused")
)

// Error is an error the plugin answered with ({"error": {...}}).
type Error struct {
	Plugin    string // the plugin's path
	Verb      string
	Code      string // CodeConflict, CodeIndexTaken, ... or ""
	Message   string
	Retryable bool // the plugin says the same call may succeed later
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "error without a message"
	}
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	return fmt.Sprintf("plugin %s: %s: %s", e.Plugin, e.Verb, msg)
}

// Unwrap maps the codes dflow knows to the backends' sentinel errors.
func (e *Error) Unwrap() error {
	switch e.Code {
	case CodeConflict:
		return backends.ErrConflict
	case CodeIndexTaken:
		return backends.ErrIndexTaken
	case CodeNotReady:
		return backends.ErrNotReady
	}
	return nil
}

// Permanent tells whether err is an error a plugin answered with and said
// retrying will not help (retryable: false). Crashes and timeouts are not
// permanent.
func Permanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && !e.Retryable
}

// IsPlugin tells whether a backend value names an executable plugin rather
// than a built-in backend: it holds a path separator and is not a URL.
func IsPlugin(value string) bool {
	hasSep := strings.ContainsRune(value, '/') || strings.ContainsRune(value, filepath.Separator)
	return hasSep && !strings.Contains(value, "://")
}

// Env is what a plugin is given besides its request.
type Env struct {
	// Exe is the dflow executable (DFLOW_EXE), which a VM plugin runs as
	// `$DFLOW_EXE agent ...`; default: this executable.
	Exe string
	// Project is the project directory (DFLOW_PROJECT), the plugin's
	// working directory; relative plugin paths are resolved against it
	// (against the current directory when it is empty).
	Project string
	// StateDir is the project's state directory (DFLOW_STATE_DIR); default
	// Project/.dflow.
	StateDir string
	// AgentPort is the node agents' port (DFLOW_AGENT_PORT); 0 leaves the
	// variable unset.
	AgentPort int
	// Vars are added to the plugin's environment (KEY=VALUE), after dflow's
	// own environment and before the DFLOW_ variables.
	Vars []string
	// Timeouts override DefaultTimeouts, by verb.
	Timeouts map[string]time.Duration
	// MaxAnswer caps the plugin's stdout in bytes; default DefaultMaxAnswer.
	MaxAnswer int64
}

// Description is a plugin's answer to describe.
type Description struct {
	Protocol int      `json:"protocol"`
	Name     string   `json:"name"`
	Kinds    []string `json:"kinds"`
}

// Plugin is an executable that speaks the plugin protocol.
type Plugin struct {
	path string
	desc Description
	env  Env
}

// Path is the plugin's absolute path.
func (p *Plugin) Path() string { return p.path }

// Description is what the plugin said about itself.
func (p *Plugin) Description() Description { return p.desc }

type cached struct {
	mod  time.Time
	size int64
	desc Description
}

var (
	cacheMu sync.Mutex
	cache   = map[string]cached{}
)

// Open checks the executable at path and asks it to describe itself (once
// per path and modification time); it refuses a plugin that does not speak
// Protocol or does not offer kind (KindVM, KindStore, KindReader,
// KindBuilder, KindContainer).
func Open(path string, kind string, env Env) (*Plugin, error) {
	switch kind {
	case KindVM, KindStore, KindReader, KindBuilder, KindContainer:
	default:
		return nil, fmt.Errorf("plugin %s: unknown backend kind %q", path, kind)
	}
	abs, err := resolve(path, env.Project)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("plugin %s: %w: no such file", abs, ErrRefused)
	case err != nil:
		return nil, fmt.Errorf("plugin %s: %w: %w", abs, ErrRefused, err)
	case fi.IsDir():
		return nil, fmt.Errorf("plugin %s: %w: is a directory, not an executable", abs, ErrRefused)
	case fi.Mode()&0o111 == 0:
		return nil, fmt.Errorf("plugin %s: %w: not executable (chmod +x %s)", abs, ErrRefused, abs)
	}
	if env.Exe == "" {
		if exe, err := os.Executable(); err == nil {
			env.Exe = exe
		}
	}
	if env.StateDir == "" && env.Project != "" {
		env.StateDir = filepath.Join(env.Project, ".dflow")
	}
	if env.MaxAnswer <= 0 {
		env.MaxAnswer = DefaultMaxAnswer
	}
	p := &Plugin{path: abs, env: env}

	cacheMu.Lock()
	c, ok := cache[abs]
	cacheMu.Unlock()
	if ok && c.mod.Equal(fi.ModTime()) && c.size == fi.Size() {
		p.desc = c.desc
	} else {
		if err := p.call(context.Background(), "describe", struct{}{}, &p.desc, nil); err != nil {
			return nil, err
		}
		cacheMu.Lock()
		cache[abs] = cached{mod: fi.ModTime(), size: fi.Size(), desc: p.desc}
		cacheMu.Unlock()
	}
	if p.desc.Protocol != Protocol {
		return nil, fmt.Errorf("plugin %s: %w: speaks protocol %d; this dflow speaks %d", abs, ErrRefused, p.desc.Protocol, Protocol)
	}
	offered := false
	for _, k := range p.desc.Kinds {
		offered = offered || k == kind
	}
	if !offered {
		return nil, fmt.Errorf("plugin %s: %w: does not offer a %s backend (it offers: %s)", abs, ErrRefused, kind, strings.Join(p.desc.Kinds, ", "))
	}
	if p.desc.Name == "" {
		p.desc.Name = filepath.Base(abs)
	}
	return p, nil
}

func resolve(path, base string) (string, error) {
	if !filepath.IsAbs(path) && base != "" {
		path = filepath.Join(base, path)
	}
	return filepath.Abs(path)
}

func (p *Plugin) timeout(verb string) time.Duration {
	if d, ok := p.env.Timeouts[verb]; ok && d > 0 {
		return d
	}
	if d, ok := DefaultTimeouts[verb]; ok {
		return d
	}
	return DefaultTimeout
}

func (p *Plugin) environ() []string {
	env := append(os.Environ(), p.env.Vars...)
	env = append(env, "DFLOW_PROTOCOL="+strconv.Itoa(Protocol), "DFLOW_EXE="+p.env.Exe,
		"DFLOW_PROJECT="+p.env.Project, "DFLOW_STATE_DIR="+p.env.StateDir)
	if p.env.AgentPort != 0 {
		env = append(env, "DFLOW_AGENT_PORT="+strconv.Itoa(p.env.AgentPort))
	}
	return env
}

// call runs `PLUGIN verb` with req on stdin and decodes the answer's result
// into res (nil: the result is ignored). Stderr also goes to log if not nil.
func (p *Plugin) call(ctx context.Context, verb string, req, res any, log io.Writer) error {
	in, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("plugin %s: %s: encode request: %w", p.path, verb, err)
	}
	timeout := p.timeout(verb)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(cctx, p.path, verb)
	if p.env.Project != "" {
		if fi, err := os.Stat(p.env.Project); err == nil && fi.IsDir() {
			cmd.Dir = p.env.Project
		}
	}
	cmd.Env = p.environ()
	cmd.Stdin = bytes.NewReader(in)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	killGroup := func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	cmd.Cancel = func() error { killGroup(); return nil }
	cmd.WaitDelay = waitDelay
	stdout := &capped{max: p.env.MaxAnswer, overflow: killGroup}
	stderr := &tail{max: 64 << 10}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	if log != nil {
		cmd.Stderr = io.MultiWriter(stderr, log)
	}

	err = cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited but left something holding its output open: end it.
		killGroup()
		err = nil
	}
	switch {
	case stdout.over:
		return fmt.Errorf("plugin %s: %s: %w: answer larger than %s; the plugin was killed%s", p.path, verb, ErrBadAnswer, size(p.env.MaxAnswer), stderr.quote())
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("plugin %s: %s: cancelled, the plugin was killed: %w", p.path, verb, ctx.Err())
	case err != nil && cctx.Err() != nil:
		return fmt.Errorf("plugin %s: %s: %w after %s; the plugin was killed%s", p.path, verb, ErrTimeout, timeout, stderr.quote())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		how := ee.String()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			if ws.Signaled() {
				how = fmt.Sprintf("killed by signal %d (%s)", ws.Signal(), ws.Signal())
			} else {
				how = fmt.Sprintf("exit status %d", ws.ExitStatus())
			}
		}
		return fmt.Errorf("plugin %s: %s: %w: %s%s", p.path, verb, ErrCrashed, how, stderr.quote())
	}
	if err != nil {
		return fmt.Errorf("plugin %s: %s: cannot run it: %w", p.path, verb, err)
	}
	result, perr := parseAnswer(stdout.buf.Bytes())
	if perr != nil {
		if e, ok := perr.(*Error); ok {
			e.Plugin, e.Verb = p.path, verb
			return e
		}
		return fmt.Errorf("plugin %s: %s: %w: %w%s", p.path, verb, ErrBadAnswer, perr, stderr.quote())
	}
	if res == nil {
		return nil
	}
	if err := json.Unmarshal(result, res); err != nil {
		return fmt.Errorf("plugin %s: %s: %w: result does not fit: %w; it was: %s", p.path, verb, ErrBadAnswer, err, excerpt(result))
	}
	return nil
}

// parseAnswer checks that out holds exactly one answer and returns its
// result, or the *Error it reports.
func parseAnswer(out []byte) (json.RawMessage, error) {
	if len(bytes.TrimSpace(out)) == 0 {
		return nil, errors.New("printed no answer")
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("answer is not JSON (%v): %s", err, excerpt(out))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("answer holds more than one JSON value (or trailing garbage): %s", excerpt(out))
	}
	var a struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			Retryable bool   `json:"retryable"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf(`answer is not an object {"result": ...} or {"error": ...}: %s`, excerpt(out))
	}
	if a.Error != nil {
		return nil, &Error{Code: a.Error.Code, Message: a.Error.Message, Retryable: a.Error.Retryable}
	}
	if len(a.Result) == 0 {
		return nil, fmt.Errorf(`answer has neither "result" nor "error": %s`, excerpt(out))
	}
	return a.Result, nil
}

func excerpt(b []byte) string {
	const n = 200
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strconv.Quote(s)
}

func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// capped keeps up to max bytes; past that it records the overflow, calls
// overflow once and fails the write (which closes the plugin's pipe).
type capped struct {
	buf      bytes.Buffer
	max      int64
	over     bool
	overflow func()
}

func (c *capped) Write(b []byte) (int, error) {
	if c.over {
		return 0, errors.New("answer too large")
	}
	if int64(c.buf.Len())+int64(len(b)) > c.max {
		c.over = true
		c.overflow()
		return 0, errors.New("answer too large")
	}
	return c.buf.Write(b)
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(b), nil
}

// quote is "; last lines of stderr:\n..." (its last 10 lines), or "" when
// the plugin wrote nothing there.
func (t *tail) quote() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimRight(string(t.buf), "\n")
	if strings.TrimSpace(s) == "" {
		return "; stderr was empty"
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return "; last lines of stderr:\n" + strings.Join(lines, "\n")
}
