package controlplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/distributive-flow/dflow/backends/plugin"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/worker"
)

// Override is one configuration value given over dflow.yaml: Key is its
// dflow.yaml key (backends.vm, temporal.address, ...), Source where it came
// from (--vm-backend, TEMPORAL_ADDRESS), for the errors and `Where`.
type Override struct{ Key, Value, Source string }

// EnvOverrides are the values the environment sets: TEMPORAL_ADDRESS, as
// the Temporal CLI reads it.
func EnvOverrides() []Override {
	if v := os.Getenv("TEMPORAL_ADDRESS"); v != "" {
		return []Override{{"temporal.address", v, "TEMPORAL_ADDRESS"}}
	}
	return nil
}

// LoadConfig finds dflow.yaml from dir (the current directory when dir is
// ""), loads it, applies the overrides in order (a later one wins) and
// checks that every backend the result names can be built. A plugin path in
// an override is relative to the current directory, not to the project.
func LoadConfig(dir string, overrides ...Override) (deploy.Config, error) {
	given := dir
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return deploy.Config{}, err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return deploy.Config{}, fmt.Errorf("--project %s: not a directory", given)
	}
	path, err := deploy.Find(abs)
	if err != nil {
		return deploy.Config{}, err
	}
	root := abs
	if path != "" {
		root = filepath.Dir(path)
	}
	cfg, err := deploy.Load(path, root)
	var ce *deploy.ConfigError
	if errors.As(err, &ce) {
		return deploy.Config{}, &InputError{err}
	}
	if err != nil {
		return deploy.Config{}, err
	}
	for _, o := range overrides {
		v := o.Value
		if plugin.IsPlugin(v) && !filepath.IsAbs(v) {
			if a, err := filepath.Abs(v); err == nil {
				v = a
			}
		}
		if err := cfg.Set(o.Key, v, o.Source); err != nil {
			return deploy.Config{}, &InputError{err}
		}
	}
	if err := CheckConfig(cfg); err != nil {
		return deploy.Config{}, &InputError{err}
	}
	changed, err := rememberBackends(&cfg)
	if err != nil {
		return deploy.Config{}, err
	}
	if changed { // what it took from the state must still be buildable here
		if err := CheckConfig(cfg); err != nil {
			return deploy.Config{}, &InputError{err}
		}
	}
	return cfg, nil
}

// nodeBackends are the backend keys a cluster's nodes are made with: a
// flag or dflow.yaml that names another one while nodes exist is refused.
var nodeBackends = []string{"backends.vm", "backends.container"}

// rememberBackends makes a cluster that has nodes keep the backends it was
// made with: every backend key left at its default takes the value the
// cluster's newest configuration revision recorded (so later commands need
// no flags), and a flag or dflow.yaml value that contradicts the VM or
// container backend of existing nodes is bad input. (The store is the one
// backend it cannot remember: it is where the state lives.)
func rememberBackends(cfg *deploy.Config) (changed bool, err error) {
	st, err := worker.OpenStore(*cfg)
	if err != nil {
		return false, err
	}
	defer st.Close()
	s, err := st.Load(context.Background())
	if err != nil {
		return false, fmt.Errorf("load the cluster's state: %w", err)
	}
	n := len(s.Configs)
	if n == 0 || len(s.Nodes) == 0 && s.Count == 0 {
		return false, nil // no nodes: nothing to keep to
	}
	rec := s.Configs[n-1].Config
	for _, key := range cfg.BackendKeys() {
		if key == "backends.store" {
			continue
		}
		was, now := rec.Get(key), cfg.Get(key)
		if was == "" || was == now {
			continue
		}
		if cfg.Where(key) == "default" {
			if err := cfg.Set(key, was, "the cluster's state"); err != nil {
				return changed, &InputError{err}
			}
			changed = true
			continue
		}
		if slices.Contains(nodeBackends, key) {
			return changed, &InputError{fmt.Errorf("%s: %s %s: cluster %s's %d node(s) were made with %s %s (its state says so); remove them first (`dflow set 0`) to change it, or leave it out and dflow uses %s",
				cfg.Where(key), key, now, cfg.Name, max(len(s.Nodes), s.Count), key, was, was)}
		}
	}
	return changed, nil
}

// BuildEnvVars are passed from the operator's environment to the build: the
// worker that builds may have been started by another shell.
var BuildEnvVars = []string{"CABAL_DIR", "CABAL_CONFIG", "PATH", "HOME", "GHC_PACKAGE_PATH", "GHC_ENVIRONMENT", "STACK_ROOT", "LANG", "LC_ALL"}

// BuildEnv is this process's values of BuildEnvVars, as KEY=VALUE.
func BuildEnv() []string {
	var env []string
	for _, k := range BuildEnvVars {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// InputError is bad input found before anything started (a count out of
// bounds, a node that does not exist): the command changed nothing, and
// dflow exits 2.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }
