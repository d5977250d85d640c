package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/version"
	"github.com/distributive-flow/dflow/worker"
	"github.com/distributive-flow/dflow/worker/devserver"
	"go.temporal.io/sdk/client"
)

// ServerInfo is what a running embedded control plane publishes under
// .dflow/ (pid, addresses, Web UI, when it started).
type ServerInfo = devserver.Info

// ErrServerRunning is RunServer's error when this project's control plane
// already runs (it holds the state directory's lock).
var ErrServerRunning = devserver.ErrLocked

// RunServer runs cfg's project's embedded control plane in this process
// until ctx ends: the Temporal server on SQLite under .dflow/ (frontend on
// 127.0.0.1, temporal.frontend exposed when set), the Web UI on
// temporal.ui, and a dflow worker on the task queue. It publishes its
// ServerInfo while it runs and reports what it does on log.
func RunServer(ctx context.Context, cfg deploy.Config, log io.Writer) error {
	host, port, err := net.SplitHostPort(cfg.Temporal.UI)
	if err != nil {
		return fmt.Errorf("%s: temporal.ui %q: %w", cfg.Where("temporal.ui"), cfg.Temporal.UI, err)
	}
	uiPort, _ := strconv.Atoi(port)
	if uiPort == 0 {
		uiPort = -1
	}
	srv, err := devserver.New(devserver.Options{
		Dir: cfg.StateDir(), UIHost: host, UIPort: uiPort, ExposeFrontend: cfg.Temporal.Frontend,
		Namespace: cfg.Temporal.Namespace, Log: log,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		if errors.Is(err, devserver.ErrLocked) {
			return fmt.Errorf("a control plane already runs for %s: %w", cfg.Dir, err)
		}
		return err
	}
	defer srv.Stop(context.Background())
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: cfg.Temporal.Namespace, Logger: quietLogger{}})
	if err != nil {
		return fmt.Errorf("connect the worker: %w", err)
	}
	defer c.Close()
	w := worker.New(c, cfg.Temporal.TaskQueue, worker.Env{})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start the worker: %w", err)
	}
	defer w.Stop()
	info := devserver.Info{
		PID: os.Getpid(), Frontend: srv.FrontendAddress(), ExposedFrontend: srv.ExposedFrontendAddress(), UI: srv.UIURL(),
		Namespace: cfg.Temporal.Namespace, Started: time.Now().UTC(), Version: version.String(),
	}
	if err := devserver.WriteInfo(cfg.StateDir(), info); err != nil {
		return err
	}
	defer devserver.RemoveInfo(cfg.StateDir())
	ui := info.UI
	if ui == "" {
		ui = "(disabled)"
	}
	fmt.Fprintf(log, "dflow control plane for %s: Temporal %s, Web UI %s, worker on task queue %s\n", cfg.Dir, FrontendString(info), ui, cfg.Temporal.TaskQueue)
	WarnExposed(info)
	<-ctx.Done()
	fmt.Fprintln(log, "dflow control plane: stopping")
	return nil
}

// ServerStatus tells whether cfg's embedded control plane runs, and where.
func ServerStatus(cfg deploy.Config) (ServerInfo, bool, error) {
	return devserver.Status(cfg.StateDir())
}

// StopServer stops cfg's embedded control plane (waiting up to timeout);
// was tells whether it ran. Workflow histories are kept.
func StopServer(cfg deploy.Config, timeout time.Duration) (was bool, err error) {
	return devserver.StopBackground(cfg.StateDir(), timeout)
}
