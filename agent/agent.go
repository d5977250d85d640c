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
	"time"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/agent/auth"
	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/filelock"
)

// Options configure an Agent.
type Options struct {
	Dir    string // the node's directory: lock, pid file, artifacts, releases, logs
	Listen string // host:port of the API
	Index  int
	// NodeID names this incarnation of the node (deploy.Node.ID); required.
	// The agent accepts only requests signed for it (auth.HeaderNode).
	NodeID   string
	KeysFile string // authorized_keys; default <Dir>/authorized_keys
	// MaxArtifact caps an uploaded artifact, in bytes: default
	// DefaultMaxArtifact (4 GiB). A larger upload is refused with 413,
	// before it is read when its Content-Length says so.
	MaxArtifact int64
	// ArtifactReserve is the free disk space an upload must leave in the
	// artifact store (507 otherwise): default the larger of 256 MiB and 1%
	// of the file system (artifact.StoreOptions.Reserve).
	ArtifactReserve int64
	// LogMaxSize caps each app instance's log and the agent's own, in
	// bytes: beyond it the log is rotated, keeping one previous part
	// (logs.go). Default DefaultLogMaxSize.
	LogMaxSize int64
	// LogFile is the agent's own log, which GET /v1/agent/log serves and
	// which is rotated like the apps' logs. Default: the file standard error
	// goes to when it is one (a VM backend started the agent with its
	// output in agent.log), else <Dir>/agent.log, which the agent then
	// writes to besides standard error. With a Log of the caller's, there is
	// no default: the caller names the file its Log writes to, if any.
	LogFile string
	Version string
	Log     *log.Logger // default: stderr with timestamps (and LogFile)
}

// DefaultMaxArtifact is the default of Options.MaxArtifact.
const DefaultMaxArtifact = artifact.DefaultMaxSize

// maxHeaderBytes bounds a request's header (431 beyond): a signed
// request's headers take a few KB.
const maxHeaderBytes = 64 << 10

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
	rt       apps    // the app processes and the proxy: see runtime.go
	logs     logBook // rotation and lengths of the logs: see logs.go
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
	switch {
	case o.NodeID == "":
		return nil, errors.New("agent: --node-id is required: requests are signed for one node, and the agent acts only on those signed for its own ID")
	case !auth.ValidNodeID(o.NodeID):
		return nil, fmt.Errorf("agent: --node-id %q: want 1 to 256 visible ASCII characters, no spaces", o.NodeID)
	case o.MaxArtifact < 0:
		return nil, fmt.Errorf("agent: --max-artifact %d: want a positive number of bytes", o.MaxArtifact)
	}
	if o.MaxArtifact == 0 {
		o.MaxArtifact = DefaultMaxArtifact
	}
	if o.KeysFile == "" {
		o.KeysFile = filepath.Join(o.Dir, "authorized_keys")
	}
	switch {
	case o.LogMaxSize < 0:
		return nil, fmt.Errorf("agent: --log-max-size %d: want a positive number of bytes", o.LogMaxSize)
	case o.LogMaxSize == 0:
		o.LogMaxSize = DefaultLogMaxSize
	}
	if err := o.setUpAgentLog(); err != nil {
		return nil, err
	}
	return &Agent{o: o, done: make(chan struct{})}, nil
}

// Start takes the node's lock, loads the authorized keys, binds the API
// address and serves in the background.
func (a *Agent) Start(ctx context.Context) error {
	// Retry briefly: a Running probe may hold the lock for an instant.
	lock, err := filelock.TryLock(LockPath(a.o.Dir), 2*time.Second)
	if errors.Is(err, filelock.ErrHeld) {
		return fmt.Errorf("agent: another agent already runs in %s", a.o.Dir)
	}
	if err != nil {
		return fmt.Errorf("agent: %w", err)
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
	store, err := artifact.OpenStoreWith(filepath.Join(a.o.Dir, "artifacts"), artifact.StoreOptions{MaxSize: a.o.MaxArtifact, Reserve: a.o.ArtifactReserve})
	if err != nil {
		return fail(fmt.Errorf("agent: %w", err))
	}
	for _, d := range []string{a.releasesDir(), filepath.Join(a.o.Dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fail(fmt.Errorf("agent: %w", err))
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", a.status)
	a.routes(mux)
	a.started = time.Now()
	a.verifier = auth.NewVerifier(keys, auth.VerifierOptions{
		// A request signed before this process started is refused: this
		// process has not seen the nonces its predecessor accepted.
		NotBefore: a.started,
		Node:      a.o.NodeID,
		// Only the artifact upload streams its body (and commits it after
		// the hash checked); every other body is read whole, up to
		// auth.DefaultMaxBody, and checked before its handler runs.
		Stream: func(r *http.Request) bool {
			_, pattern := mux.Handler(r)
			return pattern == putArtifactPattern
		},
	})
	ln, err := net.Listen("tcp", a.o.Listen)
	if err != nil {
		return fail(fmt.Errorf("agent: listen on %s: %w", a.o.Listen, err))
	}
	a.ln = ln
	if err := os.WriteFile(PIDPath(a.o.Dir), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		_ = ln.Close()
		return fail(fmt.Errorf("agent: write pid file: %w", err))
	}
	a.rt.store = store
	a.rt.procs = make(map[string]*instance)
	// The apps' context is not ctx: it lives until Stop, not until Start returns.
	a.rt.ctx, a.rt.cancel = context.WithCancel(context.Background())
	a.rt.wg.Add(1)
	go func() {
		defer a.rt.wg.Done()
		a.watchLogs()
	}()
	a.srv = &http.Server{
		Handler:           a.verifier.Middleware(mux, a.o.Log.Printf),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
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

// Addr is the address the API listens on (Options.Listen before Start).
func (a *Agent) Addr() string {
	if a.ln != nil {
		return a.ln.Addr().String()
	}
	return a.o.Listen
}

// Done is closed when the API server has stopped.
func (a *Agent) Done() <-chan struct{} { return a.done }

// Stop stops the public port's proxy and every app process (SIGTERM, then
// SIGKILL after at most 10s, less if ctx ends sooner: no orphans), shuts the
// API down and releases the lock. Safe to call twice.
func (a *Agent) Stop(ctx context.Context) error {
	var err error
	a.stopOnce.Do(func() {
		a.shutdownApps(ctx)
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
	writeJSON(w, http.StatusOK, api.Status{
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

// Running tells whether an agent holds the lock of the node directory dir.
func Running(dir string) bool { return filelock.Held(LockPath(dir)) }

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
	// Room for the apps' 10s grace period, then the API server.
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Stop(sctx); err != nil && served == nil {
		return err
	}
	return served
}
