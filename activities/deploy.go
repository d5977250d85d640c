package activities

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/temporal"
)

// Error types that retrying cannot fix, beside ErrBadInput.
const (
	// ErrBuildFailed: the package did not compile or a test failed.
	ErrBuildFailed = "BuildFailed"
	// ErrGateFailed: a new version never became ready on a node.
	ErrGateFailed = "GateFailed"
	// ErrUnhealthy: auto-rollout found the new version less healthy than
	// the old one by more than the tolerance.
	ErrUnhealthy = "Unhealthy"
)

// BuildSpec says what to build besides the configuration.
type BuildSpec struct {
	// Env is added to the build tools' environment (the CLI passes CABAL_DIR
	// and the like from the environment of whoever asked for the build).
	Env []string `json:"env,omitempty"`
	// Commit builds that commit in a clean worktree (.dflow/worktree) rather
	// than the working tree.
	Commit string `json:"commit,omitempty"`
}

// BuildLog is where the build activity writes the build tools' output.
func BuildLog(cfg deploy.Config) string { return filepath.Join(cfg.StateDir(), "build.log") }

// Build reads the package file, builds and tests the target, stores the
// bundle in the control plane's artifact store and records the build.
func (a *Activities) Build(ctx context.Context, ref deploy.ConfigRef, spec BuildSpec) (deploy.Target, error) {
	cfg, b, err := a.resolve(ctx, ref)
	if err != nil {
		return deploy.Target{}, err
	}
	env := spec.Env
	pkg := cfg.PackagePath()
	if spec.Commit != "" {
		if pkg, err = checkout(ctx, cfg, spec.Commit); err != nil {
			return deploy.Target{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, nil)
		}
	}
	desc, err := b.Reader.Read(ctx, pkg)
	if err != nil {
		return deploy.Target{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, nil)
	}
	work := filepath.Join(cfg.StateDir(), "build")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return deploy.Target{}, fmt.Errorf("build: %w", err)
	}
	logf, err := os.Create(BuildLog(cfg))
	if err != nil {
		return deploy.Target{}, fmt.Errorf("build: %w", err)
	}
	defer logf.Close()
	var t deploy.Target
	err = heartbeating(ctx, "building "+desc.Package, func(ctx context.Context) (err error) {
		dir := filepath.Dir(pkg)
		if desc.File != "" {
			dir = filepath.Dir(desc.File)
		}
		t, err = b.Builder.Build(ctx, desc, backends.BuildOptions{Dir: dir, Targets: cfg.Target, Env: env, WorkDir: work, Log: logf})
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return deploy.Target{}, err
		}
		return deploy.Target{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%v\n(the whole build log: %s)", err, BuildLog(cfg)), ErrBuildFailed, nil)
	}
	if _, _, err := b.Artifacts.PutFile(t.BundlePath, t.Digest); err != nil {
		return deploy.Target{}, fmt.Errorf("build: store the bundle: %w", err)
	}
	_ = os.Remove(t.BundlePath)
	t.BundlePath = ""
	if err := update(ctx, b.Store, func(s *deploy.State) { s.AddBuild(t) }); err != nil {
		return deploy.Target{}, fmt.Errorf("build: record it: %w", err)
	}
	return t, nil
}

// BeginRelease records r as running and returns it with its ID. It is
// idempotent per r.Workflow: a retry returns the release recorded first.
func (a *Activities) BeginRelease(ctx context.Context, ref deploy.ConfigRef, r deploy.Release) (deploy.Release, error) {
	_, b, err := a.resolve(ctx, ref)
	if err != nil {
		return deploy.Release{}, err
	}
	r.Outcome = deploy.OutcomeRunning
	err = update(ctx, b.Store, func(s *deploy.State) {
		for _, old := range s.Releases {
			if old.Workflow == r.Workflow {
				r = old
				return
			}
		}
		r.ID = s.AddRelease(r)
	})
	return r, err
}

// Finish is how a release ended.
type Finish struct {
	ID      int    `json:"id"`
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
	Nodes   []int  `json:"nodes,omitempty"`
	// Warnings are what the agents noticed about the new instances.
	Warnings []string `json:"warnings,omitempty"`
	// LeftOut are the nodes an operator left out of the rollout (a stuck
	// step, skip-node).
	LeftOut []int `json:"left_out,omitempty"`
	// Current, when not 0, becomes the release the cluster serves.
	Current int `json:"current,omitempty"`
}

// FinishRelease records how a release ended (idempotent).
func (a *Activities) FinishRelease(ctx context.Context, ref deploy.ConfigRef, f Finish) error {
	_, b, err := a.resolve(ctx, ref)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	return update(ctx, b.Store, func(s *deploy.State) {
		for i := range s.Releases {
			if s.Releases[i].ID == f.ID {
				r := &s.Releases[i]
				r.Outcome, r.Error, r.Nodes, r.Warnings, r.LeftOut = f.Outcome, f.Error, f.Nodes, f.Warnings, f.LeftOut
				if r.Finished.IsZero() {
					r.Finished = now
				}
			}
		}
		if f.Current != 0 {
			s.Current = f.Current
		}
	})
}

// Pick says which release a rollout ships when it builds nothing.
type Pick struct {
	Kind    string `json:"kind"`              // rollback, restart, start, copy
	Version string `json:"version,omitempty"` // rollback --version, copy --version
	Latest  bool   `json:"latest,omitempty"`  // copy --latest: the newest build
}

// PickTarget finds what a rollback, restart, start or copy ships: for a
// rollback the release to go back to; otherwise the current release (for
// copy --latest, the newest build; --version, that version's build).
func (a *Activities) PickTarget(ctx context.Context, ref deploy.ConfigRef, p Pick) (deploy.Release, error) {
	_, b, err := a.resolve(ctx, ref)
	if err != nil {
		return deploy.Release{}, err
	}
	st, err := b.Store.Load(ctx)
	if err != nil {
		return deploy.Release{}, fmt.Errorf("load state: %w", err)
	}
	r, err := PickRelease(st, p)
	if err != nil {
		return r, temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, nil)
	}
	return r, nil
}

// PickRelease is what p picks in st: a rollback's target, the newest
// build, the build of a version, or the current release. Its errors are
// the operator's bad input (the CLI checks with it before a workflow
// starts; PickTarget again inside one).
func PickRelease(st deploy.State, p Pick) (deploy.Release, error) {
	switch {
	case p.Kind == deploy.ReleaseRollback:
		r, _, err := deploy.RollbackTarget(st, p.Version) // the CLI warned already
		return r, err
	case p.Latest || p.Version != "":
		for i := len(st.Builds) - 1; i >= 0; i-- {
			t := st.Builds[i]
			if p.Latest || len(p.Version) >= 7 && len(t.Version) >= len(p.Version) && t.Version[:len(p.Version)] == p.Version {
				return deploy.Release{Version: t.Version, Digest: t.Digest, Target: t}, nil
			}
		}
		if p.Latest {
			return deploy.Release{}, errors.New("nothing was built yet: run dflow build")
		}
		return deploy.Release{}, fmt.Errorf("no build of version %s is kept (give at least 7 characters; `dflow releases` lists them)", p.Version)
	default:
		r, ok := st.CurrentRelease()
		if !ok {
			return r, errors.New("nothing is deployed yet: run dflow deploy")
		}
		return r, nil
	}
}

// Nodes returns the nodes the store records, failing when there are none.
func (a *Activities) Nodes(ctx context.Context, ref deploy.ConfigRef) ([]deploy.Node, error) {
	_, b, err := a.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	st, err := b.Store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	if len(st.Nodes) == 0 {
		return nil, temporal.NewNonRetryableApplicationError("the cluster has no nodes: run dflow set 3 first", ErrBadInput, nil)
	}
	return st.Nodes, nil
}

// CopyResult tells what a copy to one node sent.
type CopyResult struct {
	Sent    int64 `json:"sent"`    // bytes sent
	Skipped bool  `json:"skipped"` // the node had the artifact already
}

// CopyToNode makes node n hold the bundle t (sha256-checked on arrival by
// the agent; a corrupted transfer is refused and this activity retries).
// A node that has it already is sent nothing unless force.
func (a *Activities) CopyToNode(ctx context.Context, ref deploy.ConfigRef, n deploy.Node, t deploy.Target, force bool) (CopyResult, error) {
	cfg, b, err := a.resolve(ctx, ref)
	if err != nil {
		return CopyResult{}, err
	}
	c := api.NewClient(n.AgentURL, n.ID, b.Signer)
	// The node unpacks what it holds now, so that the start, inside the
	// rollout's cutover, only execs it, and a bundle it cannot unpack
	// fails the copy, before any node switches.
	prepare := func(res CopyResult) (CopyResult, error) {
		if err := c.PrepareRelease(ctx, t.Digest); err != nil {
			return CopyResult{}, permanent(fmt.Errorf("copy to node %d: unpack %s: %w", n.Index, t.Digest[:12], err))
		}
		return res, nil
	}
	if !force {
		has, err := c.HasArtifact(ctx, t.Digest)
		if err != nil {
			return CopyResult{}, fmt.Errorf("copy to node %d: %w", n.Index, err)
		}
		if has {
			return prepare(CopyResult{Skipped: true})
		}
	}
	f, size, err := b.Artifacts.Open(t.Digest)
	if errors.Is(err, artifact.ErrNotFound) {
		return CopyResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("copy to node %d: bundle %s (version %s) is not in the control plane's artifact store %s any more", n.Index, t.Digest[:12], deploy.ShortVersion(t.Version), b.Artifacts.Dir()), ErrBadInput, nil)
	}
	if err != nil {
		return CopyResult{}, fmt.Errorf("copy to node %d: %w", n.Index, err)
	}
	defer f.Close()
	if m := int64(cfg.Nodes.MaxArtifact); m > 0 && size > m {
		return CopyResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("copy to node %d: bundle %s is %s, more than nodes.max_artifact (%s, %s); nothing was sent", n.Index, t.Digest[:12], deploy.HumanBytes(size), cfg.Nodes.MaxArtifact, cfg.Where("nodes.max_artifact")), ErrBadInput, nil)
	}
	err = heartbeating(ctx, "copying", func(ctx context.Context) error {
		return c.PutArtifact(ctx, t.Digest, f, size, force)
	})
	if err != nil {
		// A refusal the agent will give again (too large, no room on its
		// disk) is not retried: the error says what to do.
		if errors.Is(err, artifact.ErrTooLarge) || errors.Is(err, artifact.ErrNoSpace) {
			return CopyResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("copy %s to node %d: %v", t.Digest[:12], n.Index, err), ErrBadInput, nil)
		}
		return CopyResult{}, fmt.Errorf("copy %s to node %d: %w", t.Digest[:12], n.Index, err)
	}
	return prepare(CopyResult{Sent: size})
}

// NodeProcesses lists the versions on node n.
func (a *Activities) NodeProcesses(ctx context.Context, ref deploy.ConfigRef, n deploy.Node) (api.ProcessList, error) {
	_, b, err := a.resolve(ctx, ref)
	if err != nil {
		return api.ProcessList{}, err
	}
	l, err := api.NewClient(n.AgentURL, n.ID, b.Signer).Processes(ctx)
	if err != nil {
		return api.ProcessList{}, fmt.Errorf("list versions on node %d: %w", n.Index, err)
	}
	return l, nil
}

// SwitchOnNode points node n's public port at process id.
func (a *Activities) SwitchOnNode(ctx context.Context, ref deploy.ConfigRef, n deploy.Node, id string) (api.SwitchResult, error) {
	cfg, b, err := a.resolve(ctx, ref)
	if err != nil {
		return api.SwitchResult{}, err
	}
	res, err := api.NewClient(n.AgentURL, n.ID, b.Signer).Switch(ctx, api.SwitchRequest{ID: id, AppPort: cfg.App.Port, Mode: cfg.App.ProxyMode()})
	if err != nil {
		return res, permanent(fmt.Errorf("switch node %d to %s: %w", n.Index, id, err))
	}
	return res, nil
}

// permanent marks agent answers that retrying cannot change (4xx) as
// non-retryable; transport errors stay retryable.
func permanent(err error) error {
	var apiErr *api.APIError
	if errors.As(err, &apiErr) && apiErr.Permanent() {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, nil)
	}
	return err
}
