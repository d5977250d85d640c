package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/worker"
	"github.com/distributive-flow/dflow/workflows"
)

// The read-only questions about a cluster (what the store records, what
// runs, what each node serves, what verify says) need no workflow: they are
// answered here, from the process that asks, with the backends the
// configuration names. They change nothing but the health verify records.

// Inventory is what the store records and which nodes the VM backend sees.
type Inventory = activities.Inventory

// ReadInventory loads the store's state and lists the live nodes.
func ReadInventory(ctx context.Context, cfg deploy.Config) (Inventory, error) {
	b, err := worker.Open(ctx, cfg, worker.Env{})
	if err != nil {
		return Inventory{}, err
	}
	defer b.Close()
	return activities.ReadInventory(ctx, b)
}

// CheckConfig checks that every backend cfg names exists and can be built,
// and that the keys file it names exists.
func CheckConfig(cfg deploy.Config) error {
	if err := worker.Check(cfg); err != nil {
		return err
	}
	if cfg.Keys != "" {
		if _, err := os.Stat(cfg.KeysPath()); err != nil {
			return fmt.Errorf("%s: keys %s: %w", cfg.Where("keys"), cfg.Keys, err)
		}
	}
	return nil
}

// CheckCommit checks, before any workflow starts, that a --commit-hash
// names a commit of the project's repository ("" needs no check).
func CheckCommit(ctx context.Context, cfg deploy.Config, commit string) error {
	if commit == "" {
		return nil
	}
	if _, _, err := activities.ResolveCommit(ctx, cfg, commit); err != nil {
		return &InputError{err}
	}
	return nil
}

// CheckCopy checks, before any workflow starts, that copy has something to
// copy: the build of version, the newest build (latest), or else the
// current release.
func CheckCopy(ctx context.Context, cfg deploy.Config, version string, latest bool) error {
	inv, err := ReadInventory(ctx, cfg)
	if err != nil {
		return err
	}
	if _, err := activities.PickRelease(inv.State, activities.Pick{Kind: "copy", Version: version, Latest: latest}); err != nil {
		return &InputError{fmt.Errorf("copy: %w", err)}
	}
	return nil
}

// NodeRow is one node of `dflow list`.
type NodeRow struct {
	Index         int     `json:"index"`
	Address       string  `json:"address"`
	State         string  `json:"state"`
	ID            string  `json:"id"`
	AgentURL      string  `json:"agent_url"`
	AgentVersion  string  `json:"agent_version,omitempty"`
	UptimeSeconds float64 `json:"uptime_seconds,omitempty"`
	Error         string  `json:"error,omitempty"`
}

// Node states in a NodeRow.
const (
	NodeRunning     = "running"     // agent answers an authenticated status call
	NodeUnreachable = "unreachable" // agent process runs but does not answer
	NodeGone        = "gone"        // recorded, but nothing runs
	NodeUnrecorded  = "unrecorded"  // runs, but the store does not know it
)

// ListNodes lists the nodes the store records and the ones that run, each
// with its state (asking every live agent for its status, 3 s at most),
// ordered by index.
func ListNodes(ctx context.Context, cfg deploy.Config) ([]NodeRow, error) {
	b, err := worker.Open(ctx, cfg, worker.Env{})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	st, err := b.Store.Load(ctx)
	if err != nil {
		return nil, err
	}
	live, err := b.VM.List(ctx)
	if err != nil {
		return nil, err
	}
	rows := map[int]*NodeRow{}
	for _, n := range st.Nodes {
		rows[n.Index] = &NodeRow{Index: n.Index, Address: n.Address, State: NodeGone, ID: n.ID, AgentURL: n.AgentURL}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, n := range live {
		r, ok := rows[n.Index]
		if !ok || r.ID != n.ID {
			r = &NodeRow{Index: n.Index, Address: n.Address, State: NodeUnrecorded, ID: n.ID, AgentURL: n.AgentURL}
			rows[n.Index] = r
		}
		wg.Add(1)
		go func(n deploy.Node, r *NodeRow) {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			s, err := api.NewClient(n.AgentURL, n.ID, b.Signer).Status(sctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				r.State, r.Error = NodeUnreachable, err.Error()
				return
			}
			if r.State != NodeUnrecorded {
				r.State = NodeRunning
			}
			r.AgentVersion, r.UptimeSeconds = s.AgentVersion, s.UptimeSeconds
		}(n, r)
	}
	wg.Wait()
	out := []NodeRow{}
	for _, r := range rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

// VersionRow is one node of `dflow versions`.
type VersionRow struct {
	Index     int               `json:"index"`
	Address   string            `json:"address"`
	AppURL    string            `json:"app_url"`
	Serving   string            `json:"serving"`    // version behind the public port, "" when none
	ServingID string            `json:"serving_id"` // its process instance
	Others    []string          `json:"others"`     // the other versions present (running or kept)
	Processes []api.ProcessInfo `json:"processes"`
	Error     string            `json:"error,omitempty"`
}

// NodeVersions asks every recorded node's agent what it runs (5 s at most
// each); a node that does not answer has Error set.
func NodeVersions(ctx context.Context, cfg deploy.Config) ([]VersionRow, error) {
	rows, b, _, err := nodeVersions(ctx, cfg)
	if err != nil {
		return nil, err
	}
	b.Close()
	return rows, nil
}

func nodeVersions(ctx context.Context, cfg deploy.Config) ([]VersionRow, *activities.Backends, deploy.State, error) {
	b, err := worker.Open(ctx, cfg, worker.Env{})
	if err != nil {
		return nil, nil, deploy.State{}, err
	}
	st, err := b.Store.Load(ctx)
	if err != nil {
		b.Close()
		return nil, nil, deploy.State{}, err
	}
	rows := make([]VersionRow, len(st.Nodes))
	var wg sync.WaitGroup
	for i, n := range st.Nodes {
		rows[i] = VersionRow{Index: n.Index, Address: n.Address, AppURL: "http://" + net.JoinHostPort(n.Address, strconv.Itoa(cfg.App.Port)) + "/", Others: []string{}}
		wg.Add(1)
		go func(r *VersionRow, n deploy.Node) {
			defer wg.Done()
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			l, err := api.NewClient(n.AgentURL, n.ID, b.Signer).Processes(qctx)
			if err != nil {
				r.Error = err.Error()
				return
			}
			if l.AppListen != "" {
				r.AppURL = "http://" + l.AppListen + "/"
			}
			r.Processes, r.ServingID = l.Processes, l.Serving
			for _, p := range l.Processes {
				if p.ID == l.Serving {
					r.Serving = p.Version
				}
			}
			seen := map[string]bool{}
			for _, p := range l.Processes {
				if p.Version != r.Serving && !seen[p.Version] {
					seen[p.Version] = true
					r.Others = append(r.Others, p.Version)
				}
			}
			sort.Strings(r.Others)
		}(&rows[i], n)
	}
	wg.Wait()
	return rows, b, st, nil
}

// ChecksumRow is one process of `dflow compare-checksums`.
type ChecksumRow struct {
	Index    int    `json:"index"`
	Process  string `json:"process,omitempty"`
	Version  string `json:"version,omitempty"`
	Path     string `json:"path,omitempty"`
	Expected string `json:"expected,omitempty"` // sha256 of the local build
	Actual   string `json:"actual,omitempty"`   // recomputed on the node
	OK       bool   `json:"ok"`
	Error    string `json:"error,omitempty"`
}

// CompareChecksums has every node's agent recompute the sha256 of the
// executable of each version running there, and compares it with the one
// recorded when that version was built. A row with Error could not be
// checked; one with !OK mismatches.
func CompareChecksums(ctx context.Context, cfg deploy.Config) ([]ChecksumRow, error) {
	nodes, b, st, err := nodeVersions(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	targets := map[string]deploy.Target{}
	for _, t := range st.Builds {
		targets[t.Digest] = t
	}
	for _, r := range st.Releases {
		targets[r.Digest] = r.Target
	}
	byIndex := map[int]deploy.Node{}
	for _, n := range st.Nodes {
		byIndex[n.Index] = n
	}
	var rows []ChecksumRow
	for _, nv := range nodes {
		if nv.Error != "" {
			rows = append(rows, ChecksumRow{Index: nv.Index, Error: "node unreachable: " + nv.Error})
			continue
		}
		checked := 0
		for _, p := range nv.Processes {
			if !p.Alive() {
				continue
			}
			checked++
			row := ChecksumRow{Index: nv.Index, Process: p.ID, Version: p.Version}
			t, ok := targets[p.Digest]
			exe, found := t.Executable(cfg.App.Executable)
			if !ok || !found {
				row.Error = fmt.Sprintf("digest %s is not a build this control plane knows", deploy.ShortDigest(p.Digest))
				rows = append(rows, row)
				continue
			}
			row.Path, row.Expected = exe.Path, exe.SHA256
			qctx, cancel := context.WithTimeout(ctx, time.Minute)
			n := byIndex[nv.Index]
			sum, err := api.NewClient(n.AgentURL, n.ID, b.Signer).Checksum(qctx, p.Digest, exe.Path)
			cancel()
			var apiErr *api.APIError
			switch {
			case errors.As(err, &apiErr) && apiErr.Status == 404:
				row.Actual = "missing"
			case err != nil:
				row.Error = err.Error()
			default:
				row.Actual = sum
				row.OK = sum == exe.SHA256
			}
			rows = append(rows, row)
		}
		if checked == 0 {
			rows = append(rows, ChecksumRow{Index: nv.Index, Error: "nothing runs on the node"})
		}
	}
	return rows, nil
}

// VerifyNow runs verify on every recorded node (index >= 0: that one) at
// once and records the verdicts in the store.
func VerifyNow(ctx context.Context, cfg deploy.Config, index int) ([]deploy.Verdict, error) {
	b, err := worker.Open(ctx, cfg, worker.Env{})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	inv, err := activities.ReadInventory(ctx, b)
	if err != nil {
		return nil, err
	}
	nodes := inv.State.Nodes
	if index >= 0 {
		n, ok := inv.State.Node(index)
		if !ok {
			return nil, fmt.Errorf("verify: no node at index %d (see `dflow list`)", index)
		}
		nodes = []deploy.Node{n}
	}
	if len(nodes) == 0 {
		return nil, errors.New("verify: the cluster has no nodes: run dflow set 3 first")
	}
	out := make([]deploy.Verdict, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = activities.Verify(ctx, cfg, b, n)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("verify: %v", Explain(err))
		}
	}
	return out, nil
}

// CheckProvision checks a set, cycle or destroy against the configuration
// and the nodes that exist, before any workflow starts: a count beyond
// nodes.max, or an index no node has, is an *InputError.
func CheckProvision(ctx context.Context, cfg deploy.Config, req workflows.ProvisionRequest) error {
	if req.Op == workflows.OpSet {
		if req.Count > cfg.Nodes.Max {
			return &InputError{fmt.Errorf("set %d: more than nodes.max (%d, %s); raise nodes.max in dflow.yaml if you mean it", req.Count, cfg.Nodes.Max, cfg.Where("nodes.max"))}
		}
		return nil
	}
	inv, err := ReadInventory(ctx, cfg)
	if err != nil {
		return err
	}
	_, rec := inv.State.Node(req.Index)
	_, live := deploy.State{Nodes: inv.Live}.Node(req.Index)
	if !rec && !live {
		return &InputError{fmt.Errorf("%s: no node at index %d (nodes: %s)", req.Op, req.Index, Indices(inv.State.Nodes))}
	}
	return nil
}

// Indices lists the nodes' indices, "0,1,2" ("none" for no node).
func Indices(nodes []deploy.Node) string {
	if len(nodes) == 0 {
		return "none"
	}
	s := make([]string, len(nodes))
	for i, n := range nodes {
		s[i] = strconv.Itoa(n.Index)
	}
	return strings.Join(s, ",")
}

// Mismatches sorts CompareChecksums' rows: the indices of the nodes whose
// executable is not what was built, and how many rows could not be checked.
func Mismatches(rows []ChecksumRow) (mismatching []int, unchecked int) {
	for _, r := range rows {
		switch {
		case r.Error != "":
			unchecked++
		case !r.OK:
			mismatching = append(mismatching, r.Index)
		}
	}
	return mismatching, unchecked
}

// Unhealthy is the indices of the nodes whose verdict is unhealthy.
func Unhealthy(vs []deploy.Verdict) []int {
	var bad []int
	for _, v := range vs {
		if !v.Healthy() {
			bad = append(bad, v.Index)
		}
	}
	return bad
}

// CheckRollback checks, before any workflow starts, that a rollback (to
// version, or "" for the previous release) has somewhere to go: when it has
// not, an *InputError. warning says when version was once rolled back from.
func CheckRollback(ctx context.Context, cfg deploy.Config, version string) (warning string, err error) {
	inv, err := ReadInventory(ctx, cfg)
	if err != nil {
		return "", err
	}
	if _, warning, err = deploy.RollbackTarget(inv.State, version); err != nil {
		return "", &InputError{fmt.Errorf("rollback: %w", err)}
	}
	return warning, nil
}

// CheckDeploy refuses a deploy, rollback, restart or start whose commit or
// rollback target is not there (InputError) before anything starts; a
// warning is what is worth knowing about a rollback's target.
func CheckDeploy(ctx context.Context, cfg deploy.Config, req workflows.DeployRequest) (warning string, err error) {
	if err := CheckCommit(ctx, cfg, req.CommitHash); err != nil || req.Kind != deploy.ReleaseRollback {
		return "", err
	}
	return CheckRollback(ctx, cfg, req.Version)
}

// HealthStats summarizes the health verify recorded for every node (index
// >= 0: that one) over its newest window verdicts (see deploy.Stats).
func HealthStats(ctx context.Context, cfg deploy.Config, index, window int) ([]deploy.HealthStats, error) {
	inv, err := ReadInventory(ctx, cfg)
	var stats []deploy.HealthStats
	for _, s := range deploy.Stats(inv.State.Health, window) {
		if index < 0 || s.Index == index {
			stats = append(stats, s)
		}
	}
	return stats, err
}
