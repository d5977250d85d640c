package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/deploy"
)

// inspectTimeout bounds each call InspectNode makes to an agent.
const inspectTimeout = 5 * time.Second

// InspectNode finds out what repair needs to know of node h.Node beyond
// verify: whether its agent answers, what it serves, whether the serving
// process is alive, and whether the serving executable on the node's disk
// is the one that was built (the agent's Checksum against the Target's
// sha256). A node that cannot be reached is an answer, not an error.
func (a *Activities) InspectNode(ctx context.Context, ref deploy.ConfigRef, h deploy.NodeHealth) (deploy.NodeHealth, error) {
	if !h.Live {
		return h, nil
	}
	cfg, b, err := a.resolve(ctx, ref)
	if err != nil {
		return h, err
	}
	c := api.NewClient(h.Node.AgentURL, h.Node.ID, b.Signer)
	qctx, cancel := context.WithTimeout(ctx, inspectTimeout)
	l, err := c.Processes(qctx)
	cancel()
	if err != nil {
		h.AgentOK, h.Detail = false, err.Error()
		return h, nil
	}
	h.AgentOK = true
	h.Serving = l.Serving
	var serving api.ProcessInfo
	for _, p := range l.Processes {
		if p.ID == l.Serving {
			serving = p
		}
	}
	if h.Serving == "" {
		return h, nil
	}
	h.ServingVersion, h.ServingAlive = serving.Version, serving.Alive()
	st, err := b.Store.Load(ctx)
	if err != nil {
		return h, fmt.Errorf("inspect node %d: load state: %w", h.Index, err)
	}
	t, ok := targetOf(st, serving.Digest)
	exe, found := t.Executable(cfg.App.Executable)
	if !ok || !found {
		return h, nil // a build this control plane does not know: not checked
	}
	qctx, cancel = context.WithTimeout(ctx, time.Minute)
	sum, err := c.Checksum(qctx, serving.Digest, exe.Path)
	cancel()
	var apiErr *api.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Status == 404:
		h.Checksum = deploy.ChecksumMissing
	case err != nil:
		h.AgentOK, h.Detail = false, err.Error()
	case sum != exe.SHA256:
		h.Checksum = deploy.ChecksumMismatch
	default:
		h.Checksum = deploy.ChecksumOK
	}
	return h, nil
}

// targetOf finds the build of digest among the releases and builds.
func targetOf(st deploy.State, digest string) (deploy.Target, bool) {
	for i := len(st.Releases) - 1; i >= 0; i-- {
		if st.Releases[i].Digest == digest {
			return st.Releases[i].Target, true
		}
	}
	for i := len(st.Builds) - 1; i >= 0; i-- {
		if st.Builds[i].Digest == digest {
			return st.Builds[i], true
		}
	}
	return deploy.Target{}, false
}

// RecordRepair keeps a repair round that did something in the Store and,
// when it left the cluster whole and healthy, sets the recovery time of
// chaos-monkey's kills that have none. It returns how many kills it marked
// recovered. Idempotent: a retry finds its record (by workflow) and marks
// nothing twice.
func (a *Activities) RecordRepair(ctx context.Context, ref deploy.ConfigRef, r deploy.RepairRecord, did bool) (int, error) {
	_, b, err := a.resolve(ctx, ref)
	if err != nil {
		return 0, err
	}
	marked := 0
	err = update(ctx, b.Store, func(s *deploy.State) {
		marked = 0
		if did {
			found := false
			for _, old := range s.Repairs {
				found = found || old.Workflow == r.Workflow && r.Workflow != ""
			}
			if !found {
				s.AddRepair(r)
			}
		}
		if r.Whole {
			marked = s.MarkRecovered(r.At)
		}
	})
	return marked, err
}

// RecordChaos keeps a chaos-monkey kill in the Store (idempotent per
// workflow).
func (a *Activities) RecordChaos(ctx context.Context, ref deploy.ConfigRef, c deploy.ChaosRecord) error {
	_, b, err := a.resolve(ctx, ref)
	if err != nil {
		return err
	}
	return update(ctx, b.Store, func(s *deploy.State) {
		for _, old := range s.Chaos {
			if c.Workflow != "" && old.Workflow == c.Workflow {
				return
			}
		}
		s.AddChaos(c)
	})
}
