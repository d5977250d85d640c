package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/agent/process"
	"github.com/distributive-flow/dflow/agent/proxy"
	"github.com/distributive-flow/dflow/artifact"
)

// This file is the agent's runtime: the app instances it runs, the proxy in
// front of them, and the steps of DESIGN.md §6 (start, gate, switch, drain,
// stop).

// Defaults of the runtime.
const (
	defaultDrainTimeout = 30 * time.Second
	defaultGrace        = 10 * time.Second
	failedStartGrace    = 2 * time.Second // killing a version that never served
	keepRecords         = 50              // stopped, failed and exited records kept
	logTailLines        = 20              // in a GateError
)

// instance is one app process the agent started (or tried to). Its fields
// are guarded by Agent.mu, except the channels, which are set once.
type instance struct {
	info api.ProcessInfo
	req  api.StartRequest
	proc appProc // a *process.Proc, or a *dockerApp when req.Image is set
	addr string  // 127.0.0.1:port (a container: its address), the proxy's upstream

	cancel  context.CancelFunc // aborts the start
	settled chan struct{}      // closed once the start has an outcome
	gate    *api.GateError     // the outcome of a start that failed its gate
	err     *httpError         // the outcome of a start that failed otherwise

	// upstreams are the proxy upstreams that pointed at this instance and
	// were switched away from; stopping drains them.
	upstreams []*proxy.Upstream
	previous  string        // who served before this one, for idempotent switches
	stopping  chan struct{} // non-nil once a stop began; closed when it ended
}

// apps is the agent's state about the app processes it runs.
type apps struct {
	store    *artifact.Store
	ctx      context.Context // ends when the agent stops: aborts starts
	cancel   context.CancelFunc
	wg       sync.WaitGroup // start, watch and stop goroutines
	unpackMu sync.Mutex     // one unpack at a time
	giveBack *time.Timer    // under unpackMu: returns memory to the OS after unpacking
	switchMu sync.Mutex     // one change of the proxy at a time (switch, stop)

	mu        sync.Mutex
	closing   bool
	procs     map[string]*instance
	serving   string
	prx       *proxy.Proxy // nil before the first switch; written under switchMu and mu
	prxListen string
	prxMode   string

	docker dockerEngine // versions that run as containers: see docker.go
}

// httpError is an error with the status (and optional code) to answer it
// with.
type httpError struct {
	status int
	code   string
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func errStatus(status int, format string, args ...any) *httpError {
	return &httpError{status: status, err: fmt.Errorf(format, args...)}
}

func (a *Agent) releasesDir() string             { return filepath.Join(a.o.Dir, "releases") }
func (a *Agent) releaseDir(digest string) string { return filepath.Join(a.releasesDir(), digest) }
func (a *Agent) logPath(id string) string        { return filepath.Join(a.o.Dir, "logs", id+".log") }

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// agentEnv are the variables the agent sets for every app.
var agentEnv = []string{"PORT", "HOST", "DFLOW_VERSION", "DFLOW_INDEX"}

// appHost is where a process version is told to listen (HOST): loopback,
// so that only the agent's proxy and probes reach it, never a client
// around the proxy (DESIGN.md §6).
const appHost = "127.0.0.1"

func checkStart(r *api.StartRequest) error {
	switch {
	case !validID.MatchString(r.ID):
		return fmt.Errorf("instance id %q: want 1 to 128 of [A-Za-z0-9._-], starting with a letter or digit", r.ID)
	case !artifact.ValidDigest(r.Digest):
		return fmt.Errorf("digest %q is not 64 lowercase hex digits", r.Digest)
	case !cleanRelative(r.Exec):
		return fmt.Errorf("exec %q: want a clean relative slash path inside the bundle, like bin/hello", r.Exec)
	case r.Mode != "" && r.Mode != string(proxy.ModeHTTP) && r.Mode != string(proxy.ModeTCP):
		return fmt.Errorf("mode %q: want http or tcp", r.Mode)
	case r.HealthPath != "" && !strings.HasPrefix(r.HealthPath, "/"):
		return fmt.Errorf("health path %q does not start with /", r.HealthPath)
	case r.ReadyProbes < 0 || r.ProbeInterval < 0 || r.ReadyTimeout < 0:
		return errors.New("ready_probes, probe_interval and ready_timeout may not be negative")
	}
	for k, v := range r.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return fmt.Errorf("env %q: not a valid variable", k)
		}
		if slices.Contains(agentEnv, k) {
			return fmt.Errorf("env %s is set by the agent", k)
		}
	}
	if r.Mode == "" {
		r.Mode = string(proxy.ModeHTTP)
	}
	if r.HealthPath == "" {
		r.HealthPath = "/health"
	}
	return nil
}

// cleanRelative tells whether p is a clean, relative slash path that stays
// inside its root.
func cleanRelative(p string) bool {
	return p != "" && p != "." && path.Clean(p) == p && !strings.Contains(p, "\\") && filepath.IsLocal(filepath.FromSlash(p))
}

// startProcess starts r (or finds it started) and waits until it is ready
// or failed, or until ctx ends.
func (a *Agent) startProcess(ctx context.Context, r api.StartRequest) (api.ProcessInfo, error) {
	if err := checkStart(&r); err != nil {
		return api.ProcessInfo{}, errStatus(http.StatusBadRequest, "start process %s: %w", r.ID, err)
	}
	rt := &a.rt
	rt.mu.Lock()
	if rt.closing {
		rt.mu.Unlock()
		return api.ProcessInfo{}, errStatus(http.StatusServiceUnavailable, "start process %s: the agent is stopping", r.ID)
	}
	inst, ok := rt.procs[r.ID]
	if ok && isFinal(inst.info.State) && inst.err != nil && inst.err.status >= 500 {
		ok = false // the agent failed, not the app: try again
	}
	if ok {
		rt.mu.Unlock()
		if inst.req.Digest != r.Digest || inst.req.Version != r.Version {
			return api.ProcessInfo{}, errStatus(http.StatusConflict, "start process %s: this id already names version %s (%s)", r.ID, inst.req.Version, inst.req.Digest)
		}
		return a.awaitStart(ctx, inst)
	}
	if !rt.store.Has(r.Digest) {
		rt.mu.Unlock()
		return api.ProcessInfo{}, &httpError{status: http.StatusNotFound, code: api.CodeNotFound,
			err: fmt.Errorf("start process %s: artifact %s is not on this node: %w", r.ID, r.Digest, artifact.ErrNotFound)}
	}
	sctx, cancel := context.WithCancel(rt.ctx)
	inst = &instance{
		info: api.ProcessInfo{
			ID: r.ID, Version: r.Version, Digest: r.Digest, State: api.StateStarting,
			StartedAt: time.Now().UTC(), Log: a.logPath(r.ID),
		},
		req:     r,
		cancel:  cancel,
		settled: make(chan struct{}),
	}
	rt.procs[r.ID] = inst
	rt.wg.Add(1)
	rt.mu.Unlock()
	go func() {
		defer rt.wg.Done()
		defer cancel()
		a.runStart(sctx, inst)
	}()
	return a.awaitStart(ctx, inst)
}

// awaitStart waits for inst's start to settle and answers for it.
func (a *Agent) awaitStart(ctx context.Context, inst *instance) (api.ProcessInfo, error) {
	select {
	case <-inst.settled:
	case <-ctx.Done():
		return api.ProcessInfo{}, fmt.Errorf("start process %s: %w", inst.req.ID, ctx.Err())
	}
	a.rt.mu.Lock()
	defer a.rt.mu.Unlock()
	switch {
	case inst.gate != nil:
		return inst.info, inst.gate
	case inst.err != nil:
		return inst.info, inst.err
	case inst.info.State == api.StateReady || inst.info.State == api.StateServing:
		return inst.info, nil
	}
	return inst.info, errStatus(http.StatusConflict, "start process %s: it is %s; start a new instance id", inst.info.ID, inst.info.State)
}

// runStart unpacks, starts and gates inst, and settles it.
func (a *Agent) runStart(ctx context.Context, inst *instance) {
	rt := &a.rt
	r := inst.req
	settle := func(state string, gate *api.GateError, herr *httpError) {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		inst.info.State, inst.gate, inst.err = state, gate, herr
		if state != api.StateReady {
			inst.info.StoppedAt = time.Now().UTC()
			switch {
			case gate != nil:
				inst.info.Error = gate.Reason
			case herr != nil:
				inst.info.Error = herr.Error()
			}
			a.pruneLocked()
		}
		close(inst.settled)
	}
	logPath := a.logPath(r.ID)
	var proc appProc
	var addr string
	var port int
	if r.Image != "" {
		c, gerr, herr := a.startContainer(ctx, r, logPath)
		if gerr != nil || herr != nil {
			settle(api.StateFailed, gerr, herr)
			return
		}
		proc, addr, port = c, c.addr, c.port
	} else {
		var gerr *api.GateError
		var herr *httpError
		if proc, port, gerr, herr = a.startExecutable(r, logPath); gerr != nil || herr != nil {
			settle(api.StateFailed, gerr, herr)
			return
		}
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	rt.mu.Lock()
	inst.proc, inst.addr = proc, addr
	inst.info.PID, inst.info.Port = proc.PID(), port
	rt.mu.Unlock()
	a.o.Log.Printf("agent: started %s (version %s) pid %d on %s", r.ID, r.Version, proc.PID(), addr)

	probe := process.TCPProbe(addr)
	if r.Mode == string(proxy.ModeHTTP) {
		probe = process.HTTPProbe("http://" + addr + r.HealthPath)
	}
	err := process.Gate(ctx, proc, probe, process.GateOptions{Probes: r.ReadyProbes, Interval: r.ProbeInterval, Timeout: r.ReadyTimeout})
	if err != nil {
		_ = proc.Stop(failedStartGrace)
		var ge *process.GateError
		switch {
		case errors.As(err, &ge):
			gerr := &api.GateError{ID: r.ID, Probe: ge.Probe, Reason: ge.Reason, LogTail: process.Tail(logPath, logTailLines)}
			a.o.Log.Printf("agent: %v", gerr.Error())
			settle(api.StateFailed, gerr, nil)
		case rt.ctx.Err() != nil:
			settle(api.StateStopped, nil, errStatus(http.StatusServiceUnavailable, "start process %s: the agent is stopping", r.ID))
		default: // a stop request aborted the start
			settle(api.StateStopped, nil, nil)
		}
		return
	}
	a.o.Log.Printf("agent: %s (version %s) is ready", r.ID, r.Version)
	if r.Image == "" {
		// A container listens on its own network's address by design.
		if w := listenWarning(port); w != "" {
			a.o.Log.Printf("agent: %s (version %s) %s", r.ID, r.Version, w)
			rt.mu.Lock()
			inst.info.ListenWarning = w
			rt.mu.Unlock()
		}
	}
	settle(api.StateReady, nil, nil)
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		a.watch(inst)
	}()
}

// startExecutable starts r's executable from its unpacked bundle as a
// process on a free port.
func (a *Agent) startExecutable(r api.StartRequest, logPath string) (*process.Proc, int, *api.GateError, *httpError) {
	dir, herr := a.release(r.Digest)
	if herr != nil {
		a.o.Log.Printf("agent: start process %s: %v", r.ID, herr)
		return nil, 0, nil, herr
	}
	exe := filepath.Join(dir, filepath.FromSlash(r.Exec))
	if fi, err := os.Stat(exe); err != nil || !fi.Mode().IsRegular() {
		return nil, 0, nil, errStatus(http.StatusUnprocessableEntity, "start process %s: bundle %s has no executable %s", r.ID, r.Digest, r.Exec)
	}
	port, err := a.freePort(r.PublicPort)
	if err != nil {
		return nil, 0, nil, errStatus(http.StatusInternalServerError, "start process %s: %w", r.ID, err)
	}
	proc, err := process.Start(process.Spec{ID: r.ID, Dir: dir, Command: exe, Args: r.Args, Env: a.appEnv(r, appHost, port), LogPath: logPath})
	if err != nil {
		return nil, 0, &api.GateError{ID: r.ID, Reason: err.Error(), LogTail: process.Tail(logPath, logTailLines)}, nil
	}
	return proc, port, nil, nil
}

// appEnv is what the agent sets for an app on host:port, then r.Env (which
// checkStart keeps from overriding the agent's variables).
func (a *Agent) appEnv(r api.StartRequest, host string, port int) []string {
	env := []string{"PORT=" + strconv.Itoa(port), "HOST=" + host, "DFLOW_VERSION=" + r.Version, "DFLOW_INDEX=" + strconv.Itoa(a.o.Index)}
	for _, k := range slices.Sorted(maps.Keys(r.Env)) {
		env = append(env, k+"="+r.Env[k])
	}
	return env
}

// watch marks inst exited when its process ends without being stopped.
func (a *Agent) watch(inst *instance) {
	select {
	case <-inst.proc.Exited():
	case <-a.rt.ctx.Done():
		return
	}
	a.rt.mu.Lock()
	defer a.rt.mu.Unlock()
	if inst.stopping != nil {
		return // stopping on request
	}
	status := "exit status 0"
	if err := inst.proc.ExitErr(); err != nil {
		status = err.Error()
	}
	serving := ""
	if a.rt.serving == inst.info.ID {
		// The proxy keeps pointing at it (requests get 502): repairing is
		// another component's job.
		serving = " while serving"
	}
	inst.info.State, inst.info.Error, inst.info.StoppedAt = api.StateExited, "exited on its own: "+status, time.Now().UTC()
	a.o.Log.Printf("agent: process %s (version %s, pid %d) exited on its own%s: %s", inst.info.ID, inst.info.Version, inst.info.PID, serving, status)
	a.pruneLocked()
}

// freePort finds a free port no instance of ours was given, and that is not
// the node's public port (the proxy's now, or public, the one it will bind).
func (a *Agent) freePort(public int) (int, error) {
	for range 10 {
		port, err := process.FreePort()
		if err != nil {
			return 0, err
		}
		a.rt.mu.Lock()
		taken := port == public || a.rt.prxListen != "" && strings.HasSuffix(a.rt.prxListen, ":"+strconv.Itoa(port))
		for _, in := range a.rt.procs {
			taken = taken || in.info.Port == port && in.proc != nil && !isFinal(in.info.State)
		}
		a.rt.mu.Unlock()
		if !taken {
			return port, nil
		}
	}
	return 0, errors.New("no free port found in 10 tries")
}

// release returns the directory of the unpacked bundle digest, unpacking it
// on first use.
func (a *Agent) release(digest string) (string, *httpError) {
	a.rt.unpackMu.Lock()
	defer a.rt.unpackMu.Unlock()
	dir := a.releaseDir(digest)
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return dir, nil
	}
	f, _, err := a.rt.store.Open(digest)
	if errors.Is(err, artifact.ErrNotFound) {
		return "", &httpError{status: http.StatusNotFound, code: api.CodeNotFound, err: fmt.Errorf("unpack %s: %w", digest, err)}
	}
	if err != nil {
		return "", errStatus(http.StatusInternalServerError, "unpack %s: %w", digest, err)
	}
	defer f.Close()
	if err := artifact.Unpack(f, dir, artifact.UnpackOptions{}); err != nil {
		var unsafe *artifact.UnsafeEntryError
		if errors.As(err, &unsafe) || errors.Is(err, artifact.ErrBadBundle) {
			return "", errStatus(http.StatusUnprocessableEntity, "unpack %s: %w", digest, err)
		}
		return "", errStatus(http.StatusInternalServerError, "unpack %s: %w", digest, err)
	}
	a.giveBackMemory()
	return dir, nil
}

// giveBackMemory returns the heap that unpacking took (the decoder's window
// and buffers, about 20 MB) to the OS once no unpack has run for a while:
// an idle agent then stays near 10 MB resident. The next unpack pays for it
// with page faults (about 25 ms of CPU for examples/hello). Call it with
// unpackMu held.
func (a *Agent) giveBackMemory() {
	const after = 2 * time.Second
	if a.rt.giveBack == nil {
		a.rt.giveBack = time.AfterFunc(after, debug.FreeOSMemory)
		return
	}
	a.rt.giveBack.Reset(after)
}

// switchTo routes the public port to r.ID.
func (a *Agent) switchTo(r api.SwitchRequest) (api.SwitchResult, error) {
	if r.Mode == "" {
		r.Mode = string(proxy.ModeHTTP)
	}
	if r.Mode != string(proxy.ModeHTTP) && r.Mode != string(proxy.ModeTCP) {
		return api.SwitchResult{}, errStatus(http.StatusBadRequest, "switch to %s: mode %q: want http or tcp", r.ID, r.Mode)
	}
	if r.AppPort <= 0 || r.AppPort > 65535 {
		return api.SwitchResult{}, errStatus(http.StatusBadRequest, "switch to %s: app port %d out of range", r.ID, r.AppPort)
	}
	host, _, err := net.SplitHostPort(a.o.Listen)
	if err != nil {
		return api.SwitchResult{}, errStatus(http.StatusInternalServerError, "switch to %s: agent address %q: %w", r.ID, a.o.Listen, err)
	}
	listen := net.JoinHostPort(host, strconv.Itoa(r.AppPort))

	rt := &a.rt
	rt.switchMu.Lock()
	defer rt.switchMu.Unlock()
	rt.mu.Lock()
	inst := rt.procs[r.ID]
	switch {
	case rt.closing:
		rt.mu.Unlock()
		return api.SwitchResult{}, errStatus(http.StatusServiceUnavailable, "switch to %s: the agent is stopping", r.ID)
	case inst == nil:
		rt.mu.Unlock()
		return api.SwitchResult{}, errStatus(http.StatusNotFound, "switch to %s: no such instance", r.ID)
	case rt.serving == r.ID && inst.info.State == api.StateServing && rt.prxListen == listen && rt.prxMode == r.Mode:
		res := api.SwitchResult{Previous: inst.previous, Serving: r.ID}
		rt.mu.Unlock()
		return res, nil
	case inst.info.State != api.StateReady && inst.info.State != api.StateServing:
		state := inst.info.State
		rt.mu.Unlock()
		return api.SwitchResult{}, errStatus(http.StatusConflict, "switch to %s: it is %s, not ready", r.ID, state)
	}
	old, oldListen := rt.prx, rt.prxListen
	rt.mu.Unlock()

	if old == nil || rt.prxListen != listen || rt.prxMode != r.Mode {
		// A new public port or mode is a rare operator change. The old port
		// closes before the new one opens (they may be the same port in a
		// different mode), so there is downtime here: no zero-downtime
		// claim is made for it.
		if old != nil {
			a.o.Log.Printf("agent: public port moves from %s (%s) to %s (%s): brief downtime", oldListen, rt.prxMode, listen, r.Mode)
			ctx, cancel := context.WithTimeout(rt.ctx, 10*time.Second)
			if err := old.Stop(ctx); err != nil {
				a.o.Log.Printf("agent: %v", err)
			}
			cancel()
		}
		p := proxy.New(proxy.Options{Listen: listen, Mode: proxy.Mode(r.Mode), Log: a.o.Log.Printf})
		if err := p.Start(rt.ctx); err != nil {
			rt.mu.Lock()
			rt.prx, rt.prxListen, rt.prxMode = nil, "", ""
			if s := rt.procs[rt.serving]; s != nil && s.info.State == api.StateServing {
				s.info.State = api.StateReady
			}
			rt.serving = ""
			rt.mu.Unlock()
			return api.SwitchResult{}, errStatus(http.StatusConflict, "switch to %s: %w", r.ID, err)
		}
		rt.mu.Lock()
		rt.prx, rt.prxListen, rt.prxMode = p, listen, r.Mode
		rt.mu.Unlock()
	}
	prevUp := rt.prx.Switch(inst.addr)

	rt.mu.Lock()
	defer rt.mu.Unlock()
	prev := rt.serving
	if prev != r.ID {
		if p := rt.procs[prev]; p != nil {
			if p.info.State == api.StateServing {
				p.info.State = api.StateReady // the caller stops it explicitly
			}
			if prevUp != nil {
				p.upstreams = append(p.upstreams, prevUp)
			}
		}
		inst.previous = prev
	}
	if inst.info.State == api.StateReady {
		inst.info.State = api.StateServing
	} // else it exited meanwhile: it stays "exited", and serving (requests get 502)
	rt.serving = r.ID
	a.o.Log.Printf("agent: %s now serves %s (%s); previous: %q", r.ID, listen, r.Mode, prev)
	return api.SwitchResult{Previous: inst.previous, Serving: r.ID}, nil
}

// stopProcess stops id: off the proxy, drained, SIGTERM, grace, SIGKILL.
func (a *Agent) stopProcess(ctx context.Context, id string, r api.StopRequest) (api.ProcessInfo, error) {
	rt := &a.rt
	for {
		rt.mu.Lock()
		inst := rt.procs[id]
		if inst == nil {
			rt.mu.Unlock()
			return api.ProcessInfo{}, errStatus(http.StatusNotFound, "stop process %s: no such instance", id)
		}
		if inst.info.State == api.StateStarting {
			// Abort the start; it kills what it started. Then look again.
			rt.mu.Unlock()
			inst.cancel()
			select {
			case <-inst.settled:
				continue
			case <-ctx.Done():
				return api.ProcessInfo{}, fmt.Errorf("stop process %s: %w", id, ctx.Err())
			}
		}
		if rt.closing && inst.stopping == nil {
			info := inst.info
			rt.mu.Unlock()
			return info, errStatus(http.StatusServiceUnavailable, "stop process %s: the agent is stopping and stops every process", id)
		}
		if inst.stopping == nil && inst.proc != nil && inst.info.State != api.StateStopped && inst.info.State != api.StateFailed {
			inst.stopping = make(chan struct{})
			rt.wg.Add(1)
			go func() {
				defer rt.wg.Done()
				defer close(inst.stopping)
				a.runStop(inst, r)
			}()
		}
		done := inst.stopping
		rt.mu.Unlock()
		if done != nil {
			select {
			case <-done:
			case <-ctx.Done():
				return api.ProcessInfo{}, fmt.Errorf("stop process %s: %w", id, ctx.Err())
			}
		}
		rt.mu.Lock()
		info := inst.info
		rt.mu.Unlock()
		return info, nil
	}
}

// runStop takes inst off the proxy, drains it and stops its process.
func (a *Agent) runStop(inst *instance, r api.StopRequest) {
	rt := &a.rt
	id := inst.info.ID
	rt.switchMu.Lock()
	rt.mu.Lock()
	if rt.serving == id && rt.prx != nil {
		if u := rt.prx.Switch(""); u != nil {
			inst.upstreams = append(inst.upstreams, u)
		}
		rt.serving = ""
		a.o.Log.Printf("agent: %s was serving: the public port answers 503 until the next switch", id)
	}
	exited := inst.info.State == api.StateExited
	if !exited {
		inst.info.State = api.StateDraining
	}
	ups, proc := inst.upstreams, inst.proc
	rt.mu.Unlock()
	rt.switchMu.Unlock()

	if !r.Now && !exited {
		timeout := r.DrainTimeout
		if timeout <= 0 {
			timeout = defaultDrainTimeout
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		for _, u := range ups {
			if err := u.Drain(ctx); err != nil {
				a.o.Log.Printf("agent: stop process %s: %v; stopping it anyway", id, err)
			}
		}
		cancel()
	}
	grace := r.Grace
	if grace <= 0 {
		grace = defaultGrace
	}
	err := proc.Stop(grace)

	rt.mu.Lock()
	defer rt.mu.Unlock()
	if !exited {
		inst.info.State = api.StateStopped
	}
	if inst.info.StoppedAt.IsZero() {
		inst.info.StoppedAt = time.Now().UTC()
	}
	if err != nil {
		inst.info.Error = err.Error()
	}
	inst.upstreams = nil
	a.o.Log.Printf("agent: stopped %s (version %s, pid %d)", id, inst.info.Version, inst.info.PID)
	a.pruneLocked()
}

func isFinal(state string) bool {
	return state == api.StateStopped || state == api.StateFailed || state == api.StateExited
}

// pruneLocked forgets the oldest final records beyond keepRecords.
func (a *Agent) pruneLocked() {
	var final []*instance
	for _, in := range a.rt.procs {
		if isFinal(in.info.State) && a.rt.serving != in.info.ID && (in.stopping == nil || isClosed(in.stopping)) {
			final = append(final, in)
		}
	}
	if len(final) <= keepRecords {
		return
	}
	slices.SortFunc(final, func(x, y *instance) int { return x.info.StoppedAt.Compare(y.info.StoppedAt) })
	for _, in := range final[:len(final)-keepRecords] {
		delete(a.rt.procs, in.info.ID)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// processes lists what the agent runs and ran.
func (a *Agent) processes() api.ProcessList {
	rt := &a.rt
	rt.mu.Lock()
	defer rt.mu.Unlock()
	l := api.ProcessList{Serving: rt.serving, Mode: rt.prxMode, Processes: []api.ProcessInfo{}}
	if rt.prx != nil {
		l.AppListen = rt.prx.Addr()
	}
	for _, in := range rt.procs {
		l.Processes = append(l.Processes, in.info)
	}
	slices.SortFunc(l.Processes, func(x, y api.ProcessInfo) int {
		if c := x.StartedAt.Compare(y.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return l
}

// inUseLocked names a process that runs from digest and is not final, or
// returns "".
func (a *Agent) inUseLocked(digest string) string {
	for _, in := range a.rt.procs {
		if in.info.Digest == digest && !isFinal(in.info.State) {
			return in.info.ID
		}
	}
	return ""
}

// shutdownApps stops the proxy and every process: no orphans.
func (a *Agent) shutdownApps(ctx context.Context) {
	rt := &a.rt
	if rt.cancel == nil {
		return // never started
	}
	rt.mu.Lock()
	rt.closing = true
	prx := rt.prx
	var procs []appProc
	live := 0
	for _, in := range rt.procs {
		if in.proc != nil {
			procs = append(procs, in.proc) // final ones too: Stop kills stragglers in their group
			if !isFinal(in.info.State) {
				live++
			}
		}
	}
	rt.mu.Unlock()
	rt.cancel() // aborts gates: a start in progress kills what it started

	// Leave a second of ctx for killing and for the API server.
	grace := defaultGrace
	if d, ok := ctx.Deadline(); ok {
		grace = max(min(grace, time.Until(d)-time.Second), 0)
	}
	if prx != nil {
		pctx, cancel := context.WithTimeout(ctx, grace)
		if err := prx.Stop(pctx); err != nil {
			a.o.Log.Printf("agent: %v", err)
		}
		cancel()
	}
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Stop(grace); err != nil {
				a.o.Log.Printf("agent: %v", err)
			}
		}()
	}
	wg.Wait()
	rt.wg.Wait()
	if live > 0 {
		a.o.Log.Printf("agent: stopped %d app processes", live)
	}
}
