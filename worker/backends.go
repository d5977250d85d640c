package worker

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/agent/auth"
	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/backends"
	cabalbuilder "github.com/distributive-flow/dflow/backends/builder/cabal"
	stackbuilder "github.com/distributive-flow/dflow/backends/builder/stack"
	dockercontainer "github.com/distributive-flow/dflow/backends/container/docker"
	"github.com/distributive-flow/dflow/backends/container/process"
	"github.com/distributive-flow/dflow/backends/plugin"
	cabalreader "github.com/distributive-flow/dflow/backends/reader/cabal"
	"github.com/distributive-flow/dflow/backends/reader/hpack"
	"github.com/distributive-flow/dflow/backends/store/embedded"
	etcdstore "github.com/distributive-flow/dflow/backends/store/etcd"
	dockervm "github.com/distributive-flow/dflow/backends/vm/docker"
	"github.com/distributive-flow/dflow/backends/vm/local"
	sshvm "github.com/distributive-flow/dflow/backends/vm/ssh"
	"github.com/distributive-flow/dflow/backends/vm/vagrant"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/statedir"
	"golang.org/x/crypto/ssh"
)

// Env is what backend constructors may use besides the configuration.
type Env struct {
	// AgentCommand runs `dflow agent` for the local VM backend; default:
	// this executable's "agent" subcommand.
	AgentCommand []string
}

type vmMaker func(cfg deploy.Config, signer ssh.Signer, env Env) (backends.VMBackend, error)
type storeMaker func(cfg deploy.Config) (backends.Store, error)
type builderMaker func(cfg deploy.Config) (backends.Builder, error)
type readerMaker func(cfg deploy.Config) (backends.PackageReader, error)
type containerMaker func(cfg deploy.Config, signer ssh.Signer, arts *artifact.Store) (backends.ContainerBackend, error)

// The table of backends, by kind and name.
var (
	vmBackends = map[string]vmMaker{
		local.Name: func(cfg deploy.Config, signer ssh.Signer, env Env) (backends.VMBackend, error) {
			return local.New(local.Options{
				StateDir:  cfg.StateDir(),
				Project:   cfg.Dir,
				AgentPort: cfg.Nodes.AgentPort,
				Command:   env.AgentCommand,
				Signer:    signer,
			})
		},
		dockervm.Name: func(cfg deploy.Config, signer ssh.Signer, env Env) (backends.VMBackend, error) {
			o := dockervm.Options{Cluster: cfg.Name, AgentPort: cfg.Nodes.AgentPort, Signer: signer}
			if cfg.Backends.Container == dockercontainer.Name {
				// The nodes' agents run versions as sibling containers.
				o.DockerSocket = dockervm.DockerSocket
			}
			return dockervm.New(o)
		},
		sshvm.Name: func(cfg deploy.Config, signer ssh.Signer, env Env) (backends.VMBackend, error) {
			o, err := sshvm.OptionsFromConfig(cfg, signer)
			if err != nil {
				return nil, err
			}
			return sshvm.New(o)
		},
		vagrant.Name: func(cfg deploy.Config, signer ssh.Signer, env Env) (backends.VMBackend, error) {
			provider := os.Getenv("VAGRANT_DEFAULT_PROVIDER") // vagrant's own variable
			if provider == "" {
				provider = "docker"
			}
			return vagrant.New(vagrant.Options{
				StateDir:   cfg.StateDir(),
				Project:    cfg.Dir,
				Provider:   provider,
				Image:      cfg.Image,
				AgentPort:  cfg.Nodes.AgentPort,
				Ports:      []int{cfg.App.Port},
				Signer:     signer,
				MachineDir: local.MachineDir(),
			})
		},
	}
	stores = map[string]storeMaker{
		"embedded": func(cfg deploy.Config) (backends.Store, error) {
			if err := statedir.Ensure(cfg.StateDir()); err != nil {
				return nil, err
			}
			return embedded.Open(filepath.Join(cfg.StateDir(), "store.db"))
		},
		etcdstore.Name: func(cfg deploy.Config) (backends.Store, error) {
			return etcdstore.Open(context.Background(), cfg.Backends.Store, cfg.Name)
		},
	}
	builders = map[string]builderMaker{
		cabalbuilder.Name: func(cfg deploy.Config) (backends.Builder, error) {
			return cabalbuilder.New(cabalbuilder.Options{}), nil
		},
		stackbuilder.Name: func(cfg deploy.Config) (backends.Builder, error) {
			return stackbuilder.New(stackbuilder.Options{}), nil
		},
	}
	readers = map[string]readerMaker{
		cabalreader.Name: func(cfg deploy.Config) (backends.PackageReader, error) { return cabalreader.New(), nil },
		hpack.Name:       func(cfg deploy.Config) (backends.PackageReader, error) { return hpack.New(), nil },
	}
	containers = map[string]containerMaker{
		process.Name: func(cfg deploy.Config, signer ssh.Signer, arts *artifact.Store) (backends.ContainerBackend, error) {
			return process.New(process.Options{Signer: signer})
		},
		dockercontainer.Name: func(cfg deploy.Config, signer ssh.Signer, arts *artifact.Store) (backends.ContainerBackend, error) {
			return dockercontainer.New(dockercontainer.Options{Artifacts: arts, WorkDir: filepath.Join(cfg.StateDir(), "build"), Signer: signer})
		},
	}
	// Names that are part of dflow's design but not built into this version
	// yet, so the error can say so instead of "unknown".
	planned = map[string][]string{}
)

// names are the built-in backends of a config key, sorted.
func names(key string) []string {
	switch key {
	case "backends.vm":
		return slices.Sorted(maps.Keys(vmBackends))
	case "backends.store":
		return slices.Sorted(maps.Keys(stores))
	case "backends.builder":
		return slices.Sorted(maps.Keys(builders))
	case "backends.package_reader":
		return slices.Sorted(maps.Keys(readers))
	case "backends.container":
		return slices.Sorted(maps.Keys(containers))
	}
	return nil
}

// storeName is the table key of a store value ("etcd://h:p" -> "etcd").
func storeName(v string) string {
	if i := strings.Index(v, "://"); i >= 0 {
		return v[:i]
	}
	return v
}

// Check tells whether every backend cfg names exists in this dflow. The
// error names the value, where it came from and what is known.
func Check(cfg deploy.Config) error {
	for _, key := range cfg.BackendKeys() {
		v := cfg.Get(key)
		name := v
		if key == "backends.store" {
			name = storeName(v)
		}
		if slices.Contains(names(key), name) {
			continue
		}
		kind := strings.ReplaceAll(strings.TrimPrefix(key, "backends."), "_", " ")
		if plugin.IsPlugin(v) {
			if _, ok := pluginKinds[key]; !ok {
				return fmt.Errorf("%s: %s backend %q: the plugin protocol has no %s kind yet (built in: %s)", cfg.Where(key), kind, v, kind, strings.Join(names(key), ", "))
			}
			if _, err := openPlugin(cfg, key); err != nil {
				return fmt.Errorf("%s: %s backend: %w", cfg.Where(key), kind, err)
			}
			continue
		}
		for _, p := range planned[key] {
			if p == name {
				return fmt.Errorf("%s: %s backend %q is not available in this dflow yet (built in: %s)", cfg.Where(key), kind, v, strings.Join(names(key), ", "))
			}
		}
		return fmt.Errorf("%s: unknown %s backend %q (known: %s)", cfg.Where(key), kind, v, strings.Join(names(key), ", "))
	}
	if cfg.Image != "" && !plugin.IsPlugin(cfg.Backends.VM) && !slices.Contains(imageBackends, cfg.Backends.VM) {
		return fmt.Errorf("%s: image %q: the %s vm backend does not use an image (%s do); remove image, or choose one of those with --vm-backend",
			cfg.Where("image"), cfg.Image, cfg.Backends.VM, strings.Join(imageBackends, " and "))
	}
	return nil
}

// imageBackends are the built-in vm backends that make nodes from an image.
var imageBackends = []string{dockervm.Name, vagrant.Name}

// Signer loads (creating on first use) the key pair dflow signs node agent
// requests with: <state dir>/id_ed25519.
func Signer(cfg deploy.Config) (ssh.Signer, error) {
	if err := statedir.Ensure(cfg.StateDir()); err != nil {
		return nil, err
	}
	s, err := auth.LoadOrCreateKey(cfg.StateDir(), "dflow@"+cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("dflow key: %w", err)
	}
	return s, nil
}

// OpenStore opens the Store cfg names, alone (the CLI records configuration
// revisions with it before it starts a workflow).
func OpenStore(cfg deploy.Config) (backends.Store, error) {
	if err := Check(cfg); err != nil {
		return nil, err
	}
	return openStore(cfg)
}

func openStore(cfg deploy.Config) (backends.Store, error) {
	var st backends.Store
	var err error
	if plugin.IsPlugin(cfg.Backends.Store) {
		st, err = pluginBackend(cfg, "backends.store", (*plugin.Plugin).Store)
	} else {
		st, err = stores[storeName(cfg.Backends.Store)](cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", cfg.Backends.Store, err)
	}
	return st, nil
}

// RecordConfig saves cfg whole (app.env included) as a configuration
// revision in the Store, unless the newest revision is the same, and sets
// cfg.Revision. Every command does this before it starts a workflow:
// activities read the configuration by that number.
func RecordConfig(ctx context.Context, cfg *deploy.Config) error {
	st, err := OpenStore(*cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	var rev int64
	err = backends.Update(ctx, st, func(s *deploy.State) bool {
		last := int64(0)
		if n := len(s.Configs); n > 0 {
			last = s.Configs[n-1].Rev
		}
		rev = s.PutConfig(*cfg, time.Now())
		return rev != last
	})
	if err != nil {
		return fmt.Errorf("record the configuration: %w", err)
	}
	cfg.Revision = rev
	return nil
}

// Opener returns the activities.Opener that builds backends from the table.
func Opener(env Env) activities.Opener {
	return func(ctx context.Context, cfg deploy.Config) (*activities.Backends, error) {
		return Open(ctx, cfg, env)
	}
}

// Open builds the backends cfg names.
func Open(ctx context.Context, cfg deploy.Config, env Env) (*activities.Backends, error) {
	if err := Check(cfg); err != nil {
		return nil, err
	}
	signer, err := Signer(cfg)
	if err != nil {
		return nil, err
	}
	keys, err := auth.AuthorizedKeys(signer.PublicKey(), cfg.KeysPath())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Where("keys"), err)
	}
	var vm backends.VMBackend
	if plugin.IsPlugin(cfg.Backends.VM) {
		vm, err = pluginBackend(cfg, "backends.vm", (*plugin.Plugin).VM)
	} else {
		vm, err = vmBackends[cfg.Backends.VM](cfg, signer, env)
	}
	if err != nil {
		return nil, fmt.Errorf("vm backend %s: %w", cfg.Backends.VM, err)
	}
	st, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	var bld backends.Builder
	if plugin.IsPlugin(cfg.Backends.Builder) {
		bld, err = pluginBackend(cfg, "backends.builder", (*plugin.Plugin).Builder)
	} else {
		bld, err = builders[cfg.Backends.Builder](cfg)
	}
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("builder %s: %w", cfg.Backends.Builder, err)
	}
	var rd backends.PackageReader
	if plugin.IsPlugin(cfg.Backends.PackageReader) {
		rd, err = pluginBackend(cfg, "backends.package_reader", (*plugin.Plugin).Reader)
	} else {
		rd, err = readers[cfg.Backends.PackageReader](cfg)
	}
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("package reader %s: %w", cfg.Backends.PackageReader, err)
	}
	arts, err := artifact.OpenStoreWith(filepath.Join(cfg.StateDir(), "artifacts"), artifact.StoreOptions{MaxSize: int64(cfg.Nodes.MaxArtifact)})
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("artifact store: %w", err)
	}
	var ctr backends.ContainerBackend
	if plugin.IsPlugin(cfg.Backends.Container) {
		ctr, err = pluginBackend(cfg, "backends.container", (*plugin.Plugin).Container)
	} else {
		ctr, err = containers[cfg.Backends.Container](cfg, signer, arts)
	}
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("container backend %s: %w", cfg.Backends.Container, err)
	}
	return &activities.Backends{VM: vm, Store: st, Reader: rd, Builder: bld, Container: ctr, Artifacts: arts, Keys: keys, Signer: signer}, nil
}
