package plugin_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/artifacts"
	"github.com/distributive-flow/dflow/artifacts/artifactstest"
	"github.com/distributive-flow/dflow/artifacts/local"
	"github.com/distributive-flow/dflow/artifacts/plugin"
	backendplugin "github.com/distributive-flow/dflow/backends/plugin"
)

// dirEnv names the directory the test binary serves, when it runs as a Go
// plugin (re-exec'd by the tests below).
const dirEnv = "DFLOW_TEST_ARTIFACT_PLUGIN_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(dirEnv); dir != "" {
		s, err := local.Open(dir, artifact.StoreOptions{Reserve: -1})
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(plugin.Serve(context.Background(), "go-dir-store", s, os.Args[1:], os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

var _ plugin.Backend = artifacts.Store(nil)

// goPlugin is the test binary as a plugin (plugin.Serve over a local store).
func goPlugin(t *testing.T) artifacts.Store {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s, err := artifacts.Open(context.Background(), exe, artifacts.Options{
		Base:   t.TempDir(),
		Plugin: plugin.Options{Env: backendplugin.Env{Vars: []string{dirEnv + "=" + t.TempDir()}}, TempDir: t.TempDir()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// shPlugin is testdata/dir-store.sh, a plugin in sh.
func shPlugin(t *testing.T) artifacts.Store {
	project := t.TempDir()
	script, err := filepath.Abs("testdata/dir-store.sh")
	if err != nil {
		t.Fatal(err)
	}
	s, err := artifacts.Open(context.Background(), script, artifacts.Options{
		Base:   project,
		Plugin: plugin.Options{TempDir: t.TempDir()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformanceGo(t *testing.T) { artifactstest.Run(t, goPlugin) }

func TestConformanceShell(t *testing.T) { artifactstest.Run(t, shPlugin) }

// TestFilesLeftBehind: the files that carry bundles to and from the plugin
// are gone after each call.
func TestFilesLeftBehind(t *testing.T) {
	tmp := t.TempDir()
	exe, _ := os.Executable()
	s, err := plugin.Open(context.Background(), exe, plugin.Options{
		Env: backendplugin.Env{Vars: []string{dirEnv + "=" + t.TempDir()}}, TempDir: tmp,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b := artifactstest.RandomBlob(3, 100<<10)
	if err := s.Put(ctx, b.Digest, bytes.NewReader(b.Data), -1); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, b.Digest[:63]+"0", bytes.NewReader(b.Data), -1); err == nil {
		t.Fatal("Put of wrong content succeeded")
	}
	rc, err := s.Get(ctx, b.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("%s holds %d entries after the calls (%s...); want none", tmp, len(ents), ents[0].Name())
	}
}

// writePlugin writes an executable sh script and returns its path.
func writePlugin(t *testing.T, body string) string {
	path := filepath.Join(t.TempDir(), "p.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

const describe = `if [ "$1" = describe ]; then echo '{"result":{"protocol":1,"kinds":["artifacts"]}}'; exit 0; fi` + "\n"

// TestBrokenPlugins: every way a plugin can misbehave is an error that names
// the plugin and the verb, wraps backends/plugin's sentinels, and hangs
// nothing.
func TestBrokenPlugins(t *testing.T) {
	digest := artifactstest.NewBlob([]byte("x")).Digest
	for _, c := range []struct {
		name, script string
		open         bool // the failure is at Open
		want         error
		says         string
	}{
		{"not artifacts", `echo '{"result":{"protocol":1,"kinds":["vm"]}}'`, true, backendplugin.ErrRefused, "does not offer an artifacts store (it offers: vm)"},
		{"other protocol", `echo '{"result":{"protocol":2,"kinds":["artifacts"]}}'`, true, backendplugin.ErrRefused, "speaks protocol 2"},
		{"crash", describe + `echo oops >&2; exit 3`, false, backendplugin.ErrCrashed, "oops"},
		{"garbage", describe + `echo not json`, false, backendplugin.ErrBadAnswer, "not one JSON object"},
		{"silence", describe, false, backendplugin.ErrBadAnswer, "printed no answer"},
		{"two answers", describe + `echo '{"result":{}}{"result":{}}'`, false, backendplugin.ErrBadAnswer, "more than one JSON value"},
		{"hang", describe + `sleep 60`, false, backendplugin.ErrTimeout, "timed out after 1s"},
		{"wrong stat", describe + `echo '{"result":{"digest":"abc","size":1}}'`, false, backendplugin.ErrBadAnswer, "answered digest"},
		{"error answer", describe + `echo '{"error":{"message":"bucket on fire","retryable":true}}'`, false, nil, "bucket on fire"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writePlugin(t, c.script)
			s, err := plugin.Open(context.Background(), path, plugin.Options{Env: backendplugin.Env{
				Timeouts: map[string]time.Duration{plugin.VerbStat: time.Second},
			}})
			if !c.open {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				_, err = s.Stat(context.Background(), digest)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("error %v; want one that is %v", err, c.want)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %q; want one naming %s and saying %q", err, path, c.says)
			}
			if !c.open && !strings.Contains(err.Error(), plugin.VerbStat) {
				t.Errorf("error %q does not name the verb", err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := plugin.Open(context.Background(), filepath.Join(t.TempDir(), "nope"), plugin.Options{})
		if !errors.Is(err, backendplugin.ErrRefused) || !strings.Contains(err.Error(), "no such file") {
			t.Fatalf("Open of a missing plugin: %v", err)
		}
	})
}
