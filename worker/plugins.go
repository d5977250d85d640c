package worker

import (
	"github.com/distributive-flow/dflow/backends/plugin"
	"github.com/distributive-flow/dflow/deploy"
)

// pluginKinds are the config keys a plugin may serve, by plugin kind.
var pluginKinds = map[string]string{
	"backends.vm":             plugin.KindVM,
	"backends.store":          plugin.KindStore,
	"backends.package_reader": plugin.KindReader,
	"backends.builder":        plugin.KindBuilder,
	"backends.container":      plugin.KindContainer,
}

// openPlugin opens the executable plugin the config key names (its
// describe answer is cached per file, so this is cheap after the first).
func openPlugin(cfg deploy.Config, key string) (*plugin.Plugin, error) {
	return plugin.Open(cfg.Get(key), pluginKinds[key], plugin.Env{
		Project: cfg.Dir, StateDir: cfg.StateDir(), AgentPort: cfg.Nodes.AgentPort,
	})
}

// pluginBackend opens the plugin at key and returns its adapter of one kind.
func pluginBackend[T any](cfg deploy.Config, key string, adapter func(*plugin.Plugin) T) (T, error) {
	p, err := openPlugin(cfg, key)
	if err != nil {
		var zero T
		return zero, err
	}
	return adapter(p), nil
}
