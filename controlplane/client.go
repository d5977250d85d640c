package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/worker"
	"github.com/distributive-flow/dflow/worker/devserver"
	"github.com/distributive-flow/dflow/workflows"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Client is a connection to a cluster's control plane: the embedded one of
// its project (started on first use) or a team's Temporal.
type Client struct {
	cfg      deploy.Config
	c        client.Client
	embedded bool
	info     devserver.Info // the embedded control plane, when embedded
	// ProgressJSON makes Follow print progress events as JSON lines.
	ProgressJSON bool
	// Stderr is where Follow and waits report (default os.Stderr).
	Stderr io.Writer
}

// Connect records cfg as a configuration revision in the cluster's Store
// (setting cfg.Revision: workflows carry that number, never app.env's
// values), then dials the configured Temporal, or makes sure the embedded
// control plane of this project runs (starting it in the background) and
// dials it.
func Connect(ctx context.Context, cfg *deploy.Config) (*Client, error) {
	if err := worker.RecordConfig(ctx, cfg); err != nil {
		return nil, err
	}
	cp := &Client{cfg: *cfg, embedded: cfg.Temporal.Address == "", Stderr: os.Stderr}
	if err := cp.dial(ctx); err != nil {
		return nil, err
	}
	return cp, nil
}

func (cp *Client) dial(ctx context.Context) error {
	if !cp.embedded {
		return cp.dialAddr(ctx, cp.cfg.Temporal.Address)
	}
	// A control plane that is dying (killed a moment ago) may still hold its
	// lock and point at its dead port: dial again until a live one answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, started, err := EnsureServer(ctx, cp.cfg)
		if err != nil {
			return err
		}
		cp.info = info
		if started {
			ui := info.UI
			if ui == "" {
				ui = "disabled"
			}
			fmt.Fprintf(os.Stderr, "dflow: started the control plane for %s (Temporal %s, Web UI %s); `dflow server stop` ends it\n", cp.cfg.Dir, FrontendString(info), ui)
			WarnExposed(info)
		}
		err = cp.dialAddr(ctx, info.Frontend)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (cp *Client) dialAddr(ctx context.Context, addr string) error {
	c, err := client.DialContext(ctx, client.Options{
		HostPort:  addr,
		Namespace: cp.cfg.Temporal.Namespace,
		Logger:    quietLogger{},
	})
	if err != nil {
		return fmt.Errorf("connect to Temporal at %s (%s): %w", addr, cp.cfg.Where("temporal.address"), err)
	}
	if cp.c != nil {
		cp.c.Close()
	}
	cp.c = c
	return nil
}

// EnsureServer starts this project's embedded control plane unless it runs;
// started tells whether it did.
func EnsureServer(ctx context.Context, cfg deploy.Config) (devserver.Info, bool, error) {
	exe, err := os.Executable()
	if err != nil {
		return devserver.Info{}, false, err
	}
	argv := []string{exe, "server", "run", "--project", cfg.Dir, "--ui", cfg.Temporal.UI}
	if cfg.Temporal.Frontend != "" {
		argv = append(argv, "--frontend", cfg.Temporal.Frontend)
	}
	return devserver.StartBackground(ctx, cfg.StateDir(), argv)
}

func (cp *Client) Close() { cp.c.Close() }

// Config is the configuration the client connected with (its Revision set).
func (cp *Client) Config() deploy.Config { return cp.cfg }

// WorkflowURL is the Web UI page of a run ("" when there is none to show).
func (cp *Client) WorkflowURL(id, runID string) string {
	if cp.embedded {
		return cp.info.WorkflowURL(id, runID)
	}
	return ""
}

// BusyError says which operation holds the cluster (the CLI's exit code 75).
type BusyError struct {
	Cluster, ID, RunID, Command, Who string
	Started                          time.Time
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("cluster %s is busy with `dflow %s` (workflow %s, run %s, started %s ago by %s); wait for it with `dflow follow`, pass --wait to queue behind it, or stop it with `dflow cancel`",
		e.Cluster, e.Command, e.ID, e.RunID, time.Since(e.Started).Round(time.Second), e.Who)
}

// WhoAmI names the operator: user@host.
func WhoAmI() string {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		who += "@" + h
	}
	return who
}

// StartMutating starts a mutating workflow under the cluster lock. When the
// cluster is busy it fails naming the running operation, or with wait it
// waits for that one to end and tries again.
func (cp *Client) StartMutating(ctx context.Context, command string, wait bool, wf any, args ...any) (client.WorkflowRun, error) {
	who := WhoAmI()
	opts := client.StartWorkflowOptions{
		ID:                                       workflows.LockID(cp.cfg),
		TaskQueue:                                cp.cfg.Temporal.TaskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		Memo:                                     map[string]any{"command": command, "who": who},
		WorkflowExecutionTimeout:                 0,
	}
	if cp.embedded {
		opts.TypedSearchAttributes = temporal.NewSearchAttributes(temporal.NewSearchAttributeKeyKeyword("DflowCluster").ValueSet(cp.cfg.Name))
	}
	for {
		run, err := cp.c.ExecuteWorkflow(ctx, opts, wf, args...)
		if err == nil {
			return run, nil
		}
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if !errors.As(err, &started) {
			return nil, fmt.Errorf("start %s: %w", command, err)
		}
		busy := cp.describeBusy(ctx, opts.ID)
		if !wait {
			return nil, busy
		}
		fmt.Fprintf(cp.Stderr, "dflow: waiting: %v\n", busy)
		_ = cp.c.GetWorkflow(ctx, opts.ID, "").Get(ctx, nil)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

func (cp *Client) describeBusy(ctx context.Context, id string) error {
	e := &BusyError{Cluster: cp.cfg.Name, ID: id, Command: "?", Who: "?"}
	d, err := cp.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return e
	}
	info := d.GetWorkflowExecutionInfo()
	e.RunID = info.GetExecution().GetRunId()
	e.Started = info.GetStartTime().AsTime()
	dc := converter.GetDefaultDataConverter()
	for k, dst := range map[string]*string{"command": &e.Command, "who": &e.Who} {
		if p, ok := info.GetMemo().GetFields()[k]; ok {
			_ = dc.FromPayload(p, dst)
		}
	}
	return e
}

// RunningOp returns the cluster's running mutating workflow, if any.
func (cp *Client) RunningOp(ctx context.Context) (id, runID string, ok bool, err error) {
	id = workflows.LockID(cp.cfg)
	d, err := cp.c.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return id, "", false, nil
	}
	if err != nil {
		return id, "", false, fmt.Errorf("describe %s: %w", id, err)
	}
	info := d.GetWorkflowExecutionInfo()
	return id, info.GetExecution().GetRunId(), info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}

// Follow prints a workflow's progress until it ends and stores its result in
// result. Ctrl-C stops following, not the workflow. When the embedded
// control plane dies mid-way, follow starts it again and goes on: the
// workflow resumes where it stopped.
func (cp *Client) Follow(ctx context.Context, label, id, runID string, result any, w io.Writer) error {
	if u := cp.WorkflowURL(id, runID); u != "" {
		fmt.Fprintf(w, "%s: workflow %s — %s\n", label, id, u)
	} else {
		fmt.Fprintf(w, "%s: workflow %s (run %s)\n", label, id, runID)
	}
	start := time.Now()
	seen := 0
	restarts := 0
	const maxRestarts = 10
	view := newProgressView(w, start, cp.ProgressJSON)
	defer view.close()
	printNew := func() error {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		v, err := cp.c.QueryWorkflow(qctx, id, runID, workflows.QueryProgress)
		if err != nil {
			return err
		}
		var p deploy.Progress
		if err := v.Get(&p); err != nil {
			return err
		}
		view.show(p, p.Since(seen))
		seen = p.Seq
		return nil
	}
	for {
		gctx, stopGet := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- cp.c.GetWorkflow(gctx, id, runID).Get(gctx, result) }()
		tick := time.NewTicker(200 * time.Millisecond)
		var err error
		lost := false
	wait:
		for {
			select {
			case err = <-done:
				break wait
			case <-tick.C:
				if qerr := printNew(); qerr != nil && cp.embedded && ctx.Err() == nil {
					if _, ok, _ := devserver.Status(cp.cfg.StateDir()); !ok {
						lost = true
						break wait
					}
				}
			}
		}
		tick.Stop()
		stopGet()
		if ctx.Err() != nil {
			view.clear()
			fmt.Fprintf(w, "\n%s: stopped following; the operation goes on. `dflow follow` watches it again, `dflow cancel` stops it.\n", label)
			return ErrDetached
		}
		if lost || (err != nil && !ended(err)) {
			// The workflow did not end: following it broke (the control
			// plane died, or answered oddly while it restarted). Follow
			// it again; it goes on where it stopped.
			restarts++
			if restarts > maxRestarts {
				return fmt.Errorf("%s: lost the control plane %d times; giving up following (the workflow goes on: `dflow follow`): %v", label, restarts, err)
			}
			view.clear()
			if cp.embedded {
				if _, ok, _ := devserver.Status(cp.cfg.StateDir()); lost || !ok || unavailable(err) {
					fmt.Fprintf(w, "%s: the control plane went away; starting it again (the workflow resumes where it stopped)\n", label)
					if derr := cp.dial(ctx); derr != nil {
						return fmt.Errorf("%s: restart the control plane: %w", label, derr)
					}
					continue
				}
			}
			fmt.Fprintf(w, "%s: following broke off (%v); following again\n", label, err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(restarts) * 500 * time.Millisecond):
			}
			continue
		}
		_ = printNew()
		if err != nil {
			return opError(label, time.Since(start), id+"/"+runID, cp.WorkflowURL(id, runID), err)
		}
		view.clear()
		fmt.Fprintf(w, "%s: done in %s\n", label, time.Since(start).Round(10*time.Millisecond))
		return nil
	}
}

// ended tells whether err, from a workflow run's Get, means that the run
// ended (failed, was canceled, terminated or timed out) rather than that
// waiting for it broke off.
func ended(err error) bool {
	var wee *temporal.WorkflowExecutionError
	var app *temporal.ApplicationError
	var canceled *temporal.CanceledError
	var terminated *temporal.TerminatedError
	var timeout *temporal.TimeoutError
	var nf *serviceerror.NotFound
	return errors.As(err, &wee) || errors.As(err, &app) || errors.As(err, &canceled) ||
		errors.As(err, &terminated) || errors.As(err, &timeout) || errors.As(err, &nf)
}

// unavailable tells whether err means the frontend could not be reached.
func unavailable(err error) bool {
	// A workflow that ended with an error answered: its message may say
	// anything ("503 Service Unavailable" from an app's probe, say).
	var wee *temporal.WorkflowExecutionError
	var app *temporal.ApplicationError
	if errors.As(err, &wee) || errors.As(err, &app) {
		return false
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if s, ok := status.FromError(e); ok && (s.Code() == codes.Unavailable || s.Code() == codes.DeadlineExceeded) {
			return true
		}
		var u *serviceerror.Unavailable
		if errors.As(e, &u) {
			return true
		}
	}
	return strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "Unavailable")
}

// ErrDetached: the operator stopped following (Ctrl-C); the operation goes
// on. The CLI exits 0: nothing failed.
var ErrDetached = errors.New("stopped following")

// Explain shortens "workflow execution error (...): activity error (...):
// X (type: T, retryable: false)" to X: dflow's own words.
func Explain(err error) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return errors.New(app.Message())
	}
	return err
}

// CancelOp asks the cluster's running operation to stop.
func (cp *Client) CancelOp(ctx context.Context) (string, error) {
	id, runID, running, err := cp.RunningOp(ctx)
	if err != nil {
		return "", err
	}
	if !running {
		return "", fmt.Errorf("cluster %s runs no operation", cp.cfg.Name)
	}
	if err := cp.c.CancelWorkflow(ctx, id, runID); err != nil {
		return "", fmt.Errorf("cancel %s: %w", id, err)
	}
	return id, nil
}

// QuietLogger keeps the SDK's own log lines off the operator's terminal.
func QuietLogger() log.Logger { return quietLogger{} }

type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}

// FrontendString is where the frontend listens: 127.0.0.1, and the exposed
// address when there is one.
func FrontendString(i devserver.Info) string {
	if i.ExposedFrontend == "" {
		return i.Frontend
	}
	return i.Frontend + " (exposed on " + i.ExposedFrontend + ")"
}

// WarnExposed prints, on stderr, what the control plane serves beyond
// loopback and what whoever reaches it can do.
func WarnExposed(i devserver.Info) {
	for _, w := range i.Warnings() {
		fmt.Fprintf(os.Stderr, "dflow: warning: %s\n", w)
	}
}
