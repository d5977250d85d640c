package main

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
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// conn is the CLI's connection to the control plane.
type conn struct {
	cfg      deploy.Config
	c        client.Client
	embedded bool
	info     devserver.Info // the embedded control plane, when embedded
}

// connect records cfg as a configuration revision in the cluster's Store
// (setting cfg.Revision: workflows carry that number, never app.env's
// values), then dials the configured Temporal, or makes sure the embedded
// control plane of this project runs (starting it in the background) and
// dials it.
func connect(ctx context.Context, cfg *deploy.Config) (*conn, error) {
	if err := worker.RecordConfig(ctx, cfg); err != nil {
		return nil, err
	}
	cp := &conn{cfg: *cfg, embedded: cfg.Temporal.Address == ""}
	if err := cp.dial(ctx); err != nil {
		return nil, err
	}
	return cp, nil
}

func (cp *conn) dial(ctx context.Context) error {
	if !cp.embedded {
		return cp.dialAddr(ctx, cp.cfg.Temporal.Address)
	}
	// A control plane that is dying (killed a moment ago) may still hold its
	// lock and point at its dead port: dial again until a live one answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, started, err := ensureServer(ctx, cp.cfg)
		if err != nil {
			return err
		}
		cp.info = info
		if started {
			ui := info.UI
			if ui == "" {
				ui = "disabled"
			}
			fmt.Fprintf(os.Stderr, "dflow: started the control plane for %s (Temporal %s, Web UI %s); `dflow server stop` ends it\n", cp.cfg.Dir, frontendString(info), ui)
			warnExposed(info)
		}
		err = cp.dialAddr(ctx, info.Frontend)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (cp *conn) dialAddr(ctx context.Context, addr string) error {
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

// ensureServer starts this project's embedded control plane unless it runs.
func ensureServer(ctx context.Context, cfg deploy.Config) (devserver.Info, bool, error) {
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

func (cp *conn) Close() { cp.c.Close() }

// workflowURL is the Web UI page of a run ("" when there is none to show).
func (cp *conn) workflowURL(id, runID string) string {
	if cp.embedded {
		return cp.info.WorkflowURL(id, runID)
	}
	return ""
}

// lockID is the workflow ID every mutating operation on cfg's cluster uses:
// Temporal refuses a second one while the first runs.
func lockID(cfg deploy.Config) string { return "dflow-" + cfg.Name }

// busyError says which operation holds the cluster.
type busyError struct {
	cluster, id, runID, command, who string
	started                          time.Time
}

func (e *busyError) Error() string {
	return fmt.Sprintf("cluster %s is busy with `dflow %s` (workflow %s, run %s, started %s ago by %s); wait for it with `dflow follow`, pass --wait to queue behind it, or stop it with `dflow cancel`",
		e.cluster, e.command, e.id, e.runID, time.Since(e.started).Round(time.Second), e.who)
}

// whoAmI names the operator: user@host.
func whoAmI() string {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		who += "@" + h
	}
	return who
}

// startMutating starts a mutating workflow under the cluster lock. When the
// cluster is busy it fails naming the running operation, or with wait it
// waits for that one to end and tries again.
func (cp *conn) startMutating(ctx context.Context, command string, wait bool, wf any, args ...any) (client.WorkflowRun, error) {
	who := whoAmI()
	opts := client.StartWorkflowOptions{
		ID:                                       lockID(cp.cfg),
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
			return nil, &exitError{code: 75, err: busy}
		}
		fmt.Fprintf(os.Stderr, "dflow: waiting: %v\n", busy)
		_ = cp.c.GetWorkflow(ctx, opts.ID, "").Get(ctx, nil)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

func (cp *conn) describeBusy(ctx context.Context, id string) error {
	e := &busyError{cluster: cp.cfg.Name, id: id, command: "?", who: "?"}
	d, err := cp.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return e
	}
	info := d.GetWorkflowExecutionInfo()
	e.runID = info.GetExecution().GetRunId()
	e.started = info.GetStartTime().AsTime()
	dc := converter.GetDefaultDataConverter()
	for k, dst := range map[string]*string{"command": &e.command, "who": &e.who} {
		if p, ok := info.GetMemo().GetFields()[k]; ok {
			_ = dc.FromPayload(p, dst)
		}
	}
	return e
}

// runningOp returns the cluster's running mutating workflow, if any.
func (cp *conn) runningOp(ctx context.Context) (id, runID string, ok bool, err error) {
	id = lockID(cp.cfg)
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

// follow prints a workflow's progress until it ends and stores its result in
// result. Ctrl-C stops following, not the workflow. When the embedded
// control plane dies mid-way, follow starts it again and goes on: the
// workflow resumes where it stopped.
func (cp *conn) follow(ctx context.Context, label, id, runID string, result any, w io.Writer) error {
	if u := cp.workflowURL(id, runID); u != "" {
		fmt.Fprintf(w, "%s: workflow %s — %s\n", label, id, u)
	} else {
		fmt.Fprintf(w, "%s: workflow %s (run %s)\n", label, id, runID)
	}
	start := time.Now()
	seen := 0
	restarts := 0
	const maxRestarts = 10
	view := newProgressView(w, start)
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
			return &exitError{code: 130, err: errors.New("")}
		}
		if lost || (err != nil && cp.embedded && unavailable(err)) {
			restarts++
			if restarts > maxRestarts {
				return fmt.Errorf("%s: the control plane went away %d times; giving up following (the workflow goes on: `dflow follow`): %v", label, restarts, err)
			}
			view.clear()
			fmt.Fprintf(w, "%s: the control plane went away; starting it again (the workflow resumes where it stopped)\n", label)
			if derr := cp.dial(ctx); derr != nil {
				return fmt.Errorf("%s: restart the control plane: %w", label, derr)
			}
			continue
		}
		_ = printNew()
		if err != nil {
			return fmt.Errorf("%s failed after %s: %w", label, time.Since(start).Round(10*time.Millisecond), unwrapApp(err))
		}
		view.clear()
		fmt.Fprintf(w, "%s: done in %s\n", label, time.Since(start).Round(10*time.Millisecond))
		return nil
	}
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

// unwrapApp shortens "workflow execution error (...): activity error (...):
// X (type: T, retryable: false)" to X.
func unwrapApp(err error) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return errors.New(app.Message())
	}
	return err
}

// cancelOp asks the cluster's running operation to stop.
func (cp *conn) cancelOp(ctx context.Context) (string, error) {
	id, runID, running, err := cp.runningOp(ctx)
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

// quietLogger keeps the SDK's own log lines off the operator's terminal.
type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}
