package controlplane

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/workflows"
	"go.temporal.io/sdk/temporal"
)

// OpError is how an operation's failure reads on the terminal: which
// operation, what failed where and why (the root cause, in dflow's words:
// no Temporal wrapping), and the next command to run. The whole chain and
// the workflow stay for -v (Verbose).
type OpError struct {
	Op    string        // the command: deploy, repair, ...
	After time.Duration // how long it ran
	// Type is the failure's application error type ("" when it has none):
	// activities.ErrBadInput, workflows.ErrAborted, ...
	Type    string
	Message string // what failed where, and why
	Next    string // what to run next ("" when nothing obvious)
	// Workflow is "ID/run ID", URL its Web UI page ("" when none).
	Workflow, URL string
	Err           error // the whole chain
}

func (e *OpError) Error() string {
	s := fmt.Sprintf("%s failed after %s: %s", e.Op, e.After.Round(10*time.Millisecond), e.Message)
	if e.Next != "" {
		s += "\n  next: " + e.Next
	}
	return s
}

func (e *OpError) Unwrap() error { return e.Err }

// Verbose is Error with the workflow and the whole error chain (-v).
func (e *OpError) Verbose() string {
	s := e.Error() + "\n  workflow: " + e.Workflow
	if e.URL != "" {
		s += " " + e.URL
	}
	return s + "\n  chain: " + e.Err.Error()
}

// Aborted tells whether the operation ended because an operator (or
// deploy.stuck_action) aborted it: the CLI's own exit code.
func (e *OpError) Aborted() bool { return e.Type == workflows.ErrAborted }

// BadInput tells whether the operation refused its input.
func (e *OpError) BadInput() bool { return e.Type == activities.ErrBadInput }

// opError turns a workflow's failure into an OpError.
func opError(op string, after time.Duration, workflow, url string, err error) *OpError {
	e := &OpError{Op: op, After: after, Workflow: workflow, URL: url, Err: err}
	var app *temporal.ApplicationError
	var timeout *temporal.TimeoutError
	var act *temporal.ActivityError
	switch {
	case errors.As(err, &app):
		e.Type, e.Message = app.Type(), app.Message()
	case errors.As(err, &timeout):
		e.Message = "timed out"
		if errors.As(err, &act) {
			e.Message = fmt.Sprintf("%s timed out (%s)", act.ActivityType().Name, timeout.TimeoutType())
		}
	case errors.As(err, &act):
		e.Message = fmt.Sprintf("%s: %v", act.ActivityType().Name, rootCause(err))
	default:
		e.Message = rootCause(err).Error()
	}
	e.Message = dedupe(sayURLOnce(e.Message))
	e.Next = nextStep(op, e)
	return e
}

// rootCause is the innermost error of err's chain.
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// dedupe drops a context repeated back to back ("copy to node 0: copy to
// node 0: ..." reads "copy to node 0: ...").
func dedupe(msg string) string {
	parts := strings.Split(msg, ": ")
	out := parts[:1]
	for _, p := range parts[1:] {
		if p != out[len(out)-1] {
			out = append(out, p)
		}
	}
	return strings.Join(out, ": ")
}

// urlError is a request that says its method and URL, followed by Go's
// *url.Error, which says them again: `agent HEAD http://a/b: Head
// "http://a/b": dial tcp ...`.
var urlError = regexp.MustCompile(`\b([A-Z]+) (\S+): ([A-Z][a-z]+) "([^"]+)": `)

// sayURLOnce drops the method and URL that Go's *url.Error repeats right
// after the request that said them ("agent HEAD http://a/b: dial tcp ...").
func sayURLOnce(msg string) string {
	return urlError.ReplaceAllStringFunc(msg, func(m string) string {
		g := urlError.FindStringSubmatch(m)
		if strings.EqualFold(g[1], g[3]) && g[2] == g[4] {
			return g[1] + " " + g[2] + ": "
		}
		return m
	})
}

var nodeIn = regexp.MustCompile(`node (\d+)`)

// notReady is the next step after op's failed readiness gate. Without
// --auto-rollout the nodes switched before stay switched: only the node
// that failed kept what it served.
func notReady(op string) string {
	return "the new version did not become ready: its log is above; fix it and `dflow " + op + "` again (the node that failed kept what it served; `dflow versions` shows what each node serves)"
}

// nextStep is the command an operator runs next after e. The type of the
// failure comes first: a build's output or an app's log may say
// "connection refused" too.
func nextStep(op string, e *OpError) string {
	msg := strings.ToLower(e.Message)
	switch {
	case e.BadInput():
		return ""
	case e.Type == workflows.ErrVersionFault:
		return "`dflow rollback` goes back to what served before; `dflow status` shows every node"
	case e.Type == activities.ErrBuildFailed:
		return "fix what the build's output above says, then `dflow " + op + "` again; no node was touched"
	case e.Type == activities.ErrGateFailed:
		return notReady(op)
	// Before Aborted: an abort of a step stuck on a dead agent (by an
	// operator or deploy.stuck_action) is fixed on that node.
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "does not answer") || strings.Contains(msg, "no route to host") || strings.Contains(msg, "i/o timeout"):
		where := "a node"
		if m := nodeIn.FindStringSubmatch(e.Message); m != nil {
			where = "node " + m[1]
		}
		next := fmt.Sprintf("%s's agent does not answer: `dflow status` shows it, `dflow repair` replaces it; then `dflow %s` again", where, op)
		if e.Aborted() {
			next = "`dflow releases` shows what went back; " + next
		}
		return next
	case e.Aborted():
		return "`dflow releases` shows what went back; `dflow " + op + "` starts again"
	case strings.Contains(msg, "not ready") || strings.Contains(msg, "readiness"):
		return notReady(op)
	}
	switch op {
	case "deploy", "rollback", "restart", "start":
		return "`dflow status` and `dflow releases` show where it stopped; `dflow " + op + "` again once the cause is fixed"
	}
	return "`dflow status` shows the cluster"
}
