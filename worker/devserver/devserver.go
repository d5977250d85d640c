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
	"sync"
	"time"

	"github.com/distributive-flow/dflow/filelock"
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

// Options configure a Server.
type Options struct {
	// Dir holds the database (temporal.db) and its lock file; it is created.
	Dir string
	// IP the frontend and the UI bind to; default 127.0.0.1.
	IP string
	// FrontendPort is tried first for the gRPC frontend; if it is taken, a
	// free port is used. Default (0) 7233; negative: any free port.
	FrontendPort int
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
	frontend string
	uiURL    string
	stopOnce sync.Once
}

// New checks the options; it starts nothing.
func New(o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("devserver: Dir is required")
	}
	if o.IP == "" {
		o.IP = "127.0.0.1"
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

// Start takes the database lock, creates the schema and namespace on first
// use, and starts Temporal and the UI. It returns once the frontend answers.
func (s *Server) Start(ctx context.Context) error {
	if err := os.MkdirAll(s.o.Dir, 0o755); err != nil {
		return fmt.Errorf("devserver: create %s: %w", s.o.Dir, err)
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

func (s *Server) start(ctx context.Context) error {
	frontendPort, err := pickPort(s.o.IP, s.o.FrontendPort)
	if err != nil {
		return err
	}
	dbPath := DBPath(s.o.Dir)
	sqlCfg := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: dbPath,
		ConnectAttributes: map[string]string{
			"mode":          "rwc",
			"_journal_mode": "wal",
			"_synchronous":  "normal",
		},
	}
	if _, err := os.Stat(dbPath); errors.Is(err, os.ErrNotExist) {
		if err := sqlite.SetupSchema(sqlCfg); err != nil {
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
			p, err := freePort(s.o.IP)
			if err != nil {
				return config.Service{}, err
			}
			port = p
		}
		mp, err := freePort(s.o.IP)
		if err != nil {
			return config.Service{}, err
		}
		return config.Service{RPC: config.RPC{GRPCPort: port, MembershipPort: mp, BindOnIP: s.o.IP}}, nil
	}
	services := map[string]config.Service{}
	for name, port := range map[string]int{"frontend": frontendPort, "history": 0, "matching": 0, "worker": 0} {
		c, err := svc(port)
		if err != nil {
			return err
		}
		services[name] = c
	}
	s.frontend = net.JoinHostPort(s.o.IP, strconv.Itoa(frontendPort))
	cfg := &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: s.o.IP},
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
	return nil
}

func (s *Server) startUI() error {
	port, err := pickPort(s.o.IP, s.o.UIPort)
	if err != nil {
		return err
	}
	cfg := &uiconfig.Config{
		Host:                s.o.IP,
		Port:                port,
		TemporalGRPCAddress: s.frontend,
		EnableUI:            true,
		DefaultNamespace:    s.o.Namespace,
		DisableNewsFetch:    true,
		HideLogs:            true,
		CORS:                uiconfig.CORS{CookieInsecure: true},
	}
	s.ui = uiserver.NewServer(uioptions.WithConfigProvider(cfg))
	go func() { _ = s.ui.Start() }()
	s.uiURL = fmt.Sprintf("http://%s", net.JoinHostPort(s.o.IP, strconv.Itoa(port)))
	addr := net.JoinHostPort(s.o.IP, strconv.Itoa(port))
	for i := 0; i < 100; i++ {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("devserver: web ui did not come up on %s", addr)
}

// FrontendAddress is the host:port of the gRPC frontend (after Start).
func (s *Server) FrontendAddress() string { return s.frontend }

// UIURL is the Web UI's base URL, "" when disabled (after Start).
func (s *Server) UIURL() string { return s.uiURL }

// Stop stops the UI and Temporal and releases the lock. Safe to call twice.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
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
