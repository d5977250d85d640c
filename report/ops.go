package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"time"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/workflows"
)

// JSON is an answer with -o json: v as one line of JSON (a nil list as []).
func JSON(w io.Writer, v any) error {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
		v = []struct{}{}
	}
	return json.NewEncoder(w).Encode(v)
}

// Failure is dflow's last word on a failed command: err, or with verbose
// an operation's whole story (OpError.Verbose); nothing when the operator
// stopped following (Follow has said how to follow again) or when the
// error is an ExitError that says nothing (it has been told).
func Failure(w io.Writer, err error, verbose bool) {
	var ee *controlplane.ExitError
	var op *controlplane.OpError
	switch {
	case errors.Is(err, controlplane.ErrDetached):
	case verbose && errors.As(err, &op):
		fmt.Fprintln(w, "dflow:", op.Verbose())
	case !errors.As(err, &ee) || ee.Err != nil && ee.Err.Error() != "":
		fmt.Fprintln(w, "dflow:", err)
	}
}

// ProblemsJSON is `dflow config validate -o json`: a list of {file, line,
// key, message}.
func ProblemsJSON(w io.Writer, errs []error) error {
	type problem struct {
		File    string `json:"file,omitempty"`
		Line    int    `json:"line,omitempty"`
		Key     string `json:"key,omitempty"`
		Message string `json:"message"`
	}
	out := []problem{}
	for _, err := range errs {
		var ce *deploy.ConfigError
		if errors.As(err, &ce) {
			out = append(out, problem{File: ce.File, Line: ce.Line, Key: ce.Key, Message: ce.Msg})
		} else {
			out = append(out, problem{Message: err.Error()})
		}
	}
	return json.NewEncoder(w).Encode(out)
}

// Release is what a deploy, rollback, restart or start did: which release
// serves where, and on warn what the agents noticed about the new
// instances.
func Release(w, warn io.Writer, res workflows.DeployResult) error {
	serving := 0
	for _, o := range res.Nodes {
		if o.Serving != "" && o.Version == res.Release.Version {
			serving++
		}
	}
	fmt.Fprintf(w, "release %d: %s of version %s (digest %s) serves on %d of %d nodes\n",
		res.Release.ID, res.Release.Kind, deploy.ShortVersion(res.Release.Version), deploy.ShortDigest(res.Release.Digest), serving, len(res.Nodes))
	for _, o := range res.Nodes {
		if o.LeftOut != "" {
			fmt.Fprintf(w, "node %d was left out: %s\n", o.Index, o.LeftOut)
		}
		if o.Warning != "" {
			fmt.Fprintf(warn, "warning: %s\n", o.Warning)
		}
	}
	return nil
}

// Stopped is what `dflow stop` did.
func Stopped(w io.Writer, res []workflows.StoppedOn) error {
	n := 0
	for _, s := range res {
		n += len(s.Stopped)
	}
	_, err := fmt.Fprintf(w, "%d processes stopped on %d nodes\n", n, len(res))
	return err
}

// Copied is what `dflow copy` did.
func Copied(w io.Writer, res workflows.CopyResult) error {
	var sent int64
	for _, n := range res.Nodes {
		sent += n.Sent
	}
	_, err := fmt.Fprintf(w, "version %s (digest %s) is on %d nodes; %s sent\n", deploy.ShortVersion(res.Target.Version), deploy.ShortDigest(res.Target.Digest), len(res.Nodes), deploy.HumanBytes(sent))
	return err
}

// Provisioned is what `dflow set`, `cycle` or `destroy` did, and the nodes
// the cluster has now.
func Provisioned(w io.Writer, res workflows.ProvisionResult, nodes []deploy.Node) {
	fmt.Fprintf(w, "%d created, %d destroyed; the cluster has %d nodes (%s)\n", len(res.Created), len(res.Destroyed), len(nodes), controlplane.Indices(nodes))
	switch {
	case len(res.Created) > 0 && res.Release != 0:
		fmt.Fprintf(w, "the new nodes (%s) serve release %d (version %s)\n", controlplane.Indices(res.Created), res.Release, deploy.ShortVersion(res.Version))
	case len(res.Created) > 0:
		fmt.Fprintln(w, "the cluster has no release yet: the new nodes serve nothing until `dflow deploy`")
	}
}

// ScheduleCreated is what `gc --schedule` and `chaos-monkey --schedule` did.
func ScheduleCreated(w io.Writer, op, spec string, row controlplane.Schedule) {
	fmt.Fprintf(w, "schedule %s: %s at %q; next run %s (fires only while the control plane runs)\n", row.ID, op, spec, Stamp(row.Next))
}

// ServerStopped is `dflow server status` when the control plane of the
// project in dir does not run.
func ServerStopped(w io.Writer, dir string) {
	fmt.Fprintf(w, "control plane not running for %s (it starts with the first command that needs it)\n", dir)
}

// ServerState is `dflow server start|status`: a running control plane (see
// Server; word: started, already running, running) or, i nil, a stopped
// one (see ServerStopped); with asJSON, ServerJSON as JSON.
func ServerState(w io.Writer, asJSON bool, word, dir string, i *controlplane.ServerInfo, now time.Time) error {
	switch {
	case asJSON:
		return json.NewEncoder(w).Encode(ServerJSON(word, i))
	case i == nil:
		ServerStopped(w, dir)
		return nil
	}
	return Server(w, word, dir, *i, now)
}
