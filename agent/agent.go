package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/distributive-flow/dflow/agent/auth"
)

// Status is the answer to GET /v1/status.
type Status struct {
	Index         int       `json:"index"`
	NodeID        string    `json:"node_id"`
	Address       string    `json:"address"`
	AgentVersion  string    `json:"agent_version"`
	PID           int       `json:"pid"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
}

// Options configure an Agent.
type Options struct {
	Dir      string // the node's directory: lock, pid file, logs
	Listen   string // host:port of the API
	Index    int
	NodeID   string
	KeysFile string // authorized_keys; default <Dir>/authorized_keys
	Version  string
	Log      *log.Logger // default: stderr with timestamps
}

// Agent serves the node API.
type Agent struct {
	o        Options
	started  time.Time
	lock     *os.File
	srv      *http.Server
	ln       net.Listener
	verifier *auth.Verifier
	stopOnce sync.Once
	done     chan struct{}
}

// LockPath and PIDPath are the agent's files in a node directory.
func LockPath(dir string) string { return filepath.Join(dir, "agent.lock") }

// PIDPath is where a running agent records its process id.
func PIDPath(dir string) string { return filepath.Join(dir, "agent.pid") }

// New checks the options; it starts nothing.
func New(o Options) (*Agent, error) {
	if o.Dir == "" || o.Listen == "" {
		return nil, errors.New("agent: --dir and --listen are required")
	}
	if o.KeysFile == "" {
		o.KeysFile = filepath.Join(o.Dir, "authorized_keys")
	}
	if o.Log == nil {
		o.Log = log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
	}
	return &Agent{o: o, done: make(chan struct{})}, nil
}

// Start takes the node's lock, loads the authorized keys, binds the API
// address and serves in the background.
func (a *Agent) Start(ctx context.Context) error {
	lock, err := acquire(ctx, LockPath(a.o.Dir))
	if err != nil {
		return err
	}
	a.lock = lock
	fail := func(err error) error {
		_ = a.lock.Close()
		return err
	}
	content, err := os.ReadFile(a.o.KeysFile)
	if err != nil {
		return fail(fmt.Errorf("agent: read authorized keys: %w", err))
	}
	keys, err := auth.ParseAuthorizedKeys(a.o.KeysFile, content)
	if err != nil {
		return fail(fmt.Errorf("agent: %w", err))
	}
	if len(keys) == 0 {
		return fail(fmt.Errorf("agent: %s holds no keys: nobody could control this node", a.o.KeysFile))
	}
	a.started = time.Now()
	a.verifier = auth.NewVerifier(keys, auth.VerifierOptions{NotBefore: a.started})
	ln, err := net.Listen("tcp", a.o.Listen)
	if err != nil {
		return fail(fmt.Errorf("agent: listen on %s: %w", a.o.Listen, err))
	}
	a.ln = ln
	if err := os.WriteFile(PIDPath(a.o.Dir), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		_ = ln.Close()
		return fail(fmt.Errorf("agent: write pid file: %w", err))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", a.status)
	a.srv = &http.Server{
		Handler:           a.verifier.Middleware(mux, a.o.Log.Printf),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.o.Log.Printf("agent: serve: %v", err)
		}
	}()
	a.o.Log.Printf("agent: node %d (%s) listening on %s, %d authorized keys, version %s", a.o.Index, a.o.NodeID, ln.Addr(), len(keys), a.o.Version)
	return nil
}

// Done is closed when the API server has stopped.
func (a *Agent) Done() <-chan struct{} { return a.done }

// Stop shuts the API down and releases the lock. Safe to call twice.
func (a *Agent) Stop(ctx context.Context) error {
	var err error
	a.stopOnce.Do(func() {
		if a.srv != nil {
			err = a.srv.Shutdown(ctx)
		}
		if a.lock != nil {
			_ = os.Remove(PIDPath(a.o.Dir))
			_ = a.lock.Close()
		}
	})
	return err
}

func (a *Agent) status(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(a.o.Listen)
	writeJSON(w, http.StatusOK, Status{
		Index:         a.o.Index,
		NodeID:        a.o.NodeID,
		Address:       host,
		AgentVersion:  a.o.Version,
		PID:           os.Getpid(),
		StartedAt:     a.started,
		UptimeSeconds: time.Since(a.started).Seconds(),
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// acquire takes the exclusive lock at path, retrying briefly: a probe by
// Running may hold it for an instant.
func acquire(ctx context.Context, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("agent: open lock %s: %w", path, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) || ctx.Err() != nil {
			_ = f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("agent: another agent already runs in %s", filepath.Dir(path))
			}
			return nil, fmt.Errorf("agent: lock %s: %w", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running tells whether an agent holds the lock of the node directory dir.
func Running(dir string) bool {
	f, err := os.OpenFile(LockPath(dir), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// Run starts an agent with o and serves until ctx ends, then stops it.
func Run(ctx context.Context, o Options) error {
	a, err := New(o)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	var served error
	select {
	case <-ctx.Done():
	case <-a.Done():
		served = errors.New("agent: API server stopped")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Stop(sctx); err != nil && served == nil {
		return err
	}
	return served
}
