package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
)

// VM adapts the plugin to a VMBackend (verbs vm.create, vm.destroy, vm.list).
func (p *Plugin) VM() backends.VMBackend { return vmPlugin{p} }

// Store adapts the plugin to a Store (verbs store.load, store.save,
// store.add, store.remove).
func (p *Plugin) Store() backends.Store { return storePlugin{p} }

// Reader adapts the plugin to a PackageReader (verb reader.read).
func (p *Plugin) Reader() backends.PackageReader { return readerPlugin{p} }

// Builder adapts the plugin to a Builder (verb builder.build).
func (p *Plugin) Builder() backends.Builder { return builderPlugin{p} }

type (
	vmPlugin      struct{ p *Plugin }
	storePlugin   struct{ p *Plugin }
	readerPlugin  struct{ p *Plugin }
	builderPlugin struct{ p *Plugin }
)

var (
	_ backends.VMBackend     = vmPlugin{}
	_ backends.Store         = storePlugin{}
	_ backends.PackageReader = readerPlugin{}
	_ backends.Builder       = builderPlugin{}
)

// badResult is the error for a result that parses but breaks the contract.
func (p *Plugin) badResult(verb, format string, args ...any) error {
	return fmt.Errorf("plugin %s: %s: %w: %s", p.path, verb, ErrBadAnswer, fmt.Sprintf(format, args...))
}

// RemoveRequest is the request of store.remove.
type RemoveRequest struct {
	Index int         `json:"index"`
	Node  deploy.Node `json:"node"`
}

// AddResult is the result of store.add.
type AddResult struct {
	Index int `json:"index"`
}

// ReadRequest is the request of reader.read.
type ReadRequest struct {
	Path string `json:"path"`
}

// BuildRequest is the request of builder.build.
type BuildRequest struct {
	Desc    deploy.TargetDesc `json:"desc"`
	Options BuildOptions      `json:"options"`
}

// BuildOptions are backends.BuildOptions as sent to a plugin (without Log:
// the plugin's stderr goes there).
type BuildOptions struct {
	Dir     string   `json:"dir"`
	Targets []string `json:"targets"`
	Env     []string `json:"env,omitempty"`
	WorkDir string   `json:"work_dir"`
}

// BuildResult is the result of builder.build: the Target and where the
// bundle is (Target.BundlePath is not part of Target's JSON).
type BuildResult struct {
	deploy.Target
	BundlePath string `json:"bundle_path"`
}

func (v vmPlugin) Create(ctx context.Context, s deploy.NodeSpec) (deploy.Node, error) {
	var n deploy.Node
	if err := v.p.call(ctx, "vm.create", s, &n, nil); err != nil {
		return deploy.Node{}, err
	}
	switch {
	case n.Index != s.Index:
		return deploy.Node{}, v.p.badResult("vm.create", "asked for node %d, answered node %d", s.Index, n.Index)
	case n.ID == "" || n.Address == "" || n.AgentURL == "":
		return deploy.Node{}, v.p.badResult("vm.create", "node %d lacks an id, address or agent_url", n.Index)
	}
	if n.Backend == "" {
		n.Backend = v.p.desc.Name
	}
	return n, nil
}

func (v vmPlugin) Destroy(ctx context.Context, n deploy.Node) error {
	return v.p.call(ctx, "vm.destroy", n, nil, nil)
}

func (v vmPlugin) List(ctx context.Context) ([]deploy.Node, error) {
	var ns []deploy.Node
	if err := v.p.call(ctx, "vm.list", struct{}{}, &ns, nil); err != nil {
		return nil, err
	}
	for i := range ns {
		if ns[i].Backend == "" {
			ns[i].Backend = v.p.desc.Name
		}
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i].Index < ns[j].Index })
	return ns, nil
}

func (s storePlugin) Load(ctx context.Context) (deploy.State, error) {
	var st deploy.State
	if err := s.p.call(ctx, "store.load", struct{}{}, &st, nil); err != nil {
		return deploy.State{}, err
	}
	return st, nil
}

func (s storePlugin) Save(ctx context.Context, st deploy.State) error {
	return s.p.call(ctx, "store.save", st, nil, nil)
}

func (s storePlugin) Add(ctx context.Context, n deploy.Node) (int, error) {
	var r AddResult
	if err := s.p.call(ctx, "store.add", n, &r, nil); err != nil {
		return 0, err
	}
	if r.Index < 0 || (n.Index != deploy.AutoIndex && r.Index != n.Index) {
		return 0, s.p.badResult("store.add", "added node at index %d, answered index %d", n.Index, r.Index)
	}
	return r.Index, nil
}

func (s storePlugin) Remove(ctx context.Context, index int, n deploy.Node) error {
	return s.p.call(ctx, "store.remove", RemoveRequest{Index: index, Node: n}, nil, nil)
}

// Close does nothing: a plugin holds nothing open between calls.
func (s storePlugin) Close() error { return nil }

func (r readerPlugin) Read(ctx context.Context, path string) (deploy.TargetDesc, error) {
	var d deploy.TargetDesc
	if err := r.p.call(ctx, "reader.read", ReadRequest{Path: path}, &d, nil); err != nil {
		return deploy.TargetDesc{}, err
	}
	if d.Package == "" {
		return deploy.TargetDesc{}, r.p.badResult("reader.read", "%s: the description has no package name", path)
	}
	return d, nil
}

func (b builderPlugin) Build(ctx context.Context, d deploy.TargetDesc, o backends.BuildOptions) (deploy.Target, error) {
	req := BuildRequest{Desc: d, Options: BuildOptions{Dir: o.Dir, Targets: o.Targets, Env: o.Env, WorkDir: o.WorkDir}}
	var r BuildResult
	if err := b.p.call(ctx, "builder.build", req, &r, o.Log); err != nil {
		return deploy.Target{}, err
	}
	if r.BundlePath == "" {
		return deploy.Target{}, b.p.badResult("builder.build", "the answer has no bundle_path")
	}
	if !filepath.IsAbs(r.BundlePath) {
		r.BundlePath = filepath.Join(o.WorkDir, r.BundlePath)
	}
	if _, err := os.Stat(r.BundlePath); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return deploy.Target{}, b.p.badResult("builder.build", "bundle_path %s does not exist", r.BundlePath)
		}
		return deploy.Target{}, b.p.badResult("builder.build", "bundle_path: %v", err)
	}
	if r.Digest == "" {
		return deploy.Target{}, b.p.badResult("builder.build", "the target has no digest")
	}
	t := r.Target
	t.BundlePath = r.BundlePath
	return t, nil
}
