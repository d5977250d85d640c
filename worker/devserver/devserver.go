package devserver

import (
	"context"
	gosql "database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distributive-flow/dflow/filelock"
	"github.com/distributive-flow/dflow/statedir"
	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives/timestamp"
	"go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ErrLocked is returned by Start when another process owns the database.
var ErrLocked = errors.New("control plane database is owned by another process")

// SearchAttributes are the custom search attributes every namespace of the
// embedded server gets, so workflows can be found by cluster and version.
var SearchAttributes = map[string]enumspb.IndexedValueType{
	"DflowCluster": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"DflowVersion": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

// Retention is how long closed workflows are kept (Temporal's dev default of
// 24h is too short to look back at last week's rollout).
const Retention = 30 * 24 * time.Hour

// Loopback is the address the frontend and every internal service of the
// embedded Temporal (history, matching, worker, their membership ports)
// listen on, always.
const Loopback = "127.0.0.1"

// Options configure a Server.
type Options struct {
	// Dir holds the database (temporal.db) and its lock file; it is created
	// mode 0700 (an existing one is tightened to it), and the database,
	// its WAL files, server.json and server.log are 0600.
	Dir string
	// FrontendPort is tried first for the gRPC frontend on 127.0.0.1; if
	// it is taken, a free port is used. Default (0) 7233; negative: any
	// free port.
	FrontendPort int
	// ExposeFrontend, when set (HOST:PORT), also serves the gRPC frontend
	// on that address: a TCP forwarder to the frontend on 127.0.0.1 (the
	// internal services and their membership ports stay on loopback).
	// Whoever reaches it can start, signal, reset and terminate any
	// workflow: the embedded frontend has no authentication. Port 0 picks
	// a free port; a taken address is an error, not a fallback (remote
	// clients must know where to go). Default "": loopback only.
	ExposeFrontend string
	// UIHost is the address the Web UI alone binds to; default 127.0.0.1.
	// Another address exposes the UI (whoever reaches it can terminate and
	// reset workflows) but never the frontend: the UI reaches the frontend
	// on 127.0.0.1.
	UIHost string
	// UIPort is tried first for the Web UI; if taken, a free port is used.
	// Default 8233. Negative disables the UI.
	UIPort int
	// Namespace to create; default "default".
	Namespace string
	// Log receives the server's own log lines (warnings and errors);
	// default io.Discard.
	Log io.Writer
}

// Server is an embedded Temporal server with its Web UI.
type Server struct {
	o        Options
	lock     *os.File
	temporal temporal.Server
	ui       *uiserver.Server
	expose   *forwarder
	frontend string
	uiURL    string
	stopOnce sync.Once
}

// New checks the options; it starts nothing.
func New(o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("devserver: Dir is required")
	}
	if o.UIHost == "" {
		o.UIHost = Loopback
	}
	if o.ExposeFrontend != "" {
		if _, _, err := net.SplitHostPort(o.ExposeFrontend); err != nil {
			return nil, fmt.Errorf("devserver: expose the frontend on %q: %w", o.ExposeFrontend, err)
		}
	}
	if o.FrontendPort == 0 {
		o.FrontendPort = 7233
	} else if o.FrontendPort < 0 {
		o.FrontendPort = 0
	}
	if o.UIPort == 0 {
		o.UIPort = 8233
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return &Server{o: o}, nil
}

func lockPath(dir string) string { return filepath.Join(dir, "temporal.lock") }

// DBPath is the SQLite file of the control plane in dir.
func DBPath(dir string) string { return filepath.Join(dir, "temporal.db") }

// stateFiles are the files of dir that must be its owner's only: the
// database with its rollback journal, WAL and shared-memory files (SQLite
// makes these with the database's mode), the record and the log.
func stateFiles(dir string) []string {
	db := DBPath(dir)
	return []string{db, db + "-journal", db + "-wal", db + "-shm", infoPath(dir), LogPath(dir)}
}

// Start takes the database lock, creates the schema and namespace on first
// use, and starts Temporal and the UI. It returns once the frontend answers.
func (s *Server) Start(ctx context.Context) error {
	if err := statedir.Ensure(s.o.Dir); err != nil {
		return fmt.Errorf("devserver: %w", err)
	}
	if err := statedir.Tighten(stateFiles(s.o.Dir)...); err != nil {
		return fmt.Errorf("devserver: %w", err)
	}
	lock, err := filelock.TryLock(lockPath(s.o.Dir), 0)
	if errors.Is(err, filelock.ErrHeld) {
		return fmt.Errorf("devserver: %s: %w", lockPath(s.o.Dir), ErrLocked)
	}
	if err != nil {
		return fmt.Errorf("devserver: %w", err)
	}
	s.lock = lock
	if err := s.start(ctx); err != nil {
		_ = s.lock.Close()
		s.lock = nil
		return err
	}
	return nil
}

func (s *Server) start(ctx context.Context) (err error) {
	if s.o.ExposeFrontend != "" {
		// Bound first, so the frontend's own port cannot take it.
		ln, lerr := net.Listen("tcp", s.o.ExposeFrontend)
		if lerr != nil {
			return fmt.Errorf("devserver: expose the frontend on %s: %w", s.o.ExposeFrontend, lerr)
		}
		s.expose = &forwarder{ln: ln}
		defer func() {
			if err != nil {
				_ = s.expose.Close()
				s.expose = nil
			}
		}()
	}
	frontendPort, err := pickPort(Loopback, s.o.FrontendPort)
	if err != nil {
		return err
	}
	dbPath := DBPath(s.o.Dir)
	sqlCfg := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: dbPath,
		ConnectAttributes: map[string]string{
			// Temporal's sqlite plugin passes every key it does not know
			// as a PRAGMA (a leading '_' made SQLite ignore them: the
			// database ran in rollback-journal mode, synchronous FULL).
			"mode":         "rwc",
			"journal_mode": "wal",
			"synchronous":  "normal",
		},
	}
	if _, err := os.Stat(dbPath); errors.Is(err, os.ErrNotExist) {
		// SQLite creates a database 0644, and its -wal and -shm files with
		// the database's mode: an empty 0600 file is a new database that
		// keeps all three private.
		f, err := os.OpenFile(dbPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, statedir.FileMode)
		if err != nil {
			return fmt.Errorf("devserver: create %s: %w", dbPath, err)
		}
		_ = f.Close()
		if err := sqlite.SetupSchema(sqlCfg); err != nil {
			_ = os.Remove(dbPath) // a half-made schema would not be made again
			return fmt.Errorf("devserver: create schema in %s: %w", dbPath, err)
		}
	} else if err := forgetMembers(dbPath); err != nil {
		return err
	}
	ns, err := sqlite.NewNamespaceConfig("active", s.o.Namespace, false, SearchAttributes)
	if err != nil {
		return fmt.Errorf("devserver: namespace config: %w", err)
	}
	ns.Detail.Config.Retention = timestamp.DurationPtr(Retention)
	if err := sqlite.CreateNamespaces(sqlCfg, ns); err != nil {
		return fmt.Errorf("devserver: create namespace %s: %w", s.o.Namespace, err)
	}

	svc := func(port int) (config.Service, error) {
		if port == 0 {
			p, err := freePort(Loopback)
			if err != nil {
				return config.Service{}, err
			}
			port = p
		}
		mp, err := freePort(Loopback)
		if err != nil {
			return config.Service{}, err
		}
		return config.Service{RPC: config.RPC{GRPCPort: port, MembershipPort: mp, BindOnIP: Loopback}}, nil
	}
	services := map[string]config.Service{}
	for name, port := range map[string]int{"frontend": frontendPort, "history": 0, "matching": 0, "worker": 0} {
		c, err := svc(port)
		if err != nil {
			return err
		}
		services[name] = c
	}
	s.frontend = net.JoinHostPort(Loopback, strconv.Itoa(frontendPort))
	cfg := &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: Loopback},
		},
		Persistence: config.Persistence{
			DefaultStore:     sqliteplugin.PluginName,
			VisibilityStore:  sqliteplugin.PluginName,
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlCfg}},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        "active",
			CurrentClusterName:       "active",
			ClusterInformation: map[string]cluster.ClusterInformation{
				"active": {Enabled: true, InitialFailoverVersion: 1, RPCAddress: s.frontend},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services:            services,
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		PublicClient: config.PublicClient{HostPort: s.frontend},
	}
	dyn := dynamicconfig.StaticClient{
		dynamicconfig.TransferProcessorMaxPollRPS.Key():             1000,
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(newLogger(s.o.Log)),
		temporal.WithDynamicConfigClient(dyn),
	)
	if err != nil {
		return fmt.Errorf("devserver: new temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("devserver: start temporal: %w", err)
	}
	s.temporal = srv
	if err := waitFrontend(ctx, s.frontend, s.o.Namespace); err != nil {
		_ = srv.Stop()
		return err
	}
	if s.o.UIPort > 0 {
		if err := s.startUI(); err != nil {
			_ = srv.Stop()
			return err
		}
	}
	if s.expose != nil {
		s.expose.Start(s.frontend)
	}
	return nil
}

func (s *Server) startUI() error {
	host := s.o.UIHost
	port, err := pickPort(host, s.o.UIPort)
	if err != nil {
		return err
	}
	bind := host
	if strings.Contains(host, ":") {
		bind = "[" + host + "]" // the UI server joins host and port with a bare ":"
	}
	cfg := &uiconfig.Config{
		Host: bind,
		Port: port,
		// The UI's server side reaches the frontend on loopback, whatever
		// address the UI itself is served on.
		TemporalGRPCAddress: s.frontend,
		EnableUI:            true,
		DefaultNamespace:    s.o.Namespace,
		DisableNewsFetch:    true,
		HideLogs:            true,
		CORS:                uiconfig.CORS{CookieInsecure: true},
	}
	s.ui = uiserver.NewServer(uioptions.WithConfigProvider(cfg))
	go func() { _ = s.ui.Start() }()
	s.uiURL = fmt.Sprintf("http://%s", net.JoinHostPort(host, strconv.Itoa(port)))
	addr := net.JoinHostPort(dialHost(host), strconv.Itoa(port))
	for i := 0; i < 100; i++ {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("devserver: web ui did not come up on %s", addr)
}

// FrontendAddress is the host:port of the gRPC frontend on 127.0.0.1
// (after Start).
func (s *Server) FrontendAddress() string { return s.frontend }

// ExposedFrontendAddress is the host:port the frontend is also served on
// (Options.ExposeFrontend, its port chosen), "" when it is not (after Start).
func (s *Server) ExposedFrontendAddress() string {
	if s.expose == nil {
		return ""
	}
	return s.expose.Addr()
}

// UIURL is the Web UI's base URL, "" when disabled (after Start).
func (s *Server) UIURL() string { return s.uiURL }

// Stop stops the UI and Temporal and releases the lock. Safe to call twice.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		if s.expose != nil {
			_ = s.expose.Close()
		}
		if s.ui != nil {
			s.ui.Stop()
		}
		if s.temporal != nil {
			err = s.temporal.Stop()
		}
		if s.lock != nil {
			_ = s.lock.Close()
		}
	})
	return err
}

// forgetMembers deletes the cluster membership rows a previous process left
// behind. We hold the lock, so none of them is alive; left in place, the
// membership ring would try to join those dead addresses for tens of seconds.
func forgetMembers(dbPath string) error {
	db, err := gosql.Open("sqlite", dbPath)
	if err != nil {
		return fmt.Errorf("devserver: open %s: %w", dbPath, err)
	}
	defer db.Close()
	if _, err := db.Exec("DELETE FROM cluster_membership"); err != nil {
		return fmt.Errorf("devserver: forget old members in %s: %w", dbPath, err)
	}
	return nil
}

// pickPort returns want if it can be bound on ip, else a free port.
func pickPort(ip string, want int) (int, error) {
	if want > 0 {
		if l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(want))); err == nil {
			_ = l.Close()
			return want, nil
		}
	}
	return freePort(ip)
}

// dialHost is where to reach a listener bound to host from this machine: a
// wildcard address is reached on loopback.
func dialHost(host string) string {
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			return Loopback
		}
		return "::1"
	}
	return host
}

func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("devserver: find a free port on %s: %w", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFrontend returns once the namespace answers on addr.
func waitFrontend(ctx context.Context, addr, namespace string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last error
	for {
		c, err := client.Dial(client.Options{HostPort: addr, Namespace: namespace, Logger: quietLogger{}})
		if err == nil {
			_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
			c.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("devserver: frontend %s not ready: %w", addr, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func newLogger(w io.Writer) log.Logger {
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	core := zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.WarnLevel)
	return log.NewZapLogger(zap.New(core))
}
