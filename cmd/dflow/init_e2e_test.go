package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// runInit runs the real dflow init in dir with args; it returns stdout,
// stderr and the exit code.
func runInit(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(dflowBin, append([]string{"init"}, args...)...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errb.String(), code
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	}
}

const (
	libCabal = "cabal-version: 2.4\nname: core\nversion: 1.0\nlibrary\n  exposed-modules: Core\n  build-depends: base\n"
	appCabal = "cabal-version: 2.4\nname: app\nversion: 1.0\nexecutable app-server\n  main-is: Main.hs\n  build-depends: base, core\n"
	cliYAML  = "name: cli\nversion: 1.0\nexecutables:\n  cli:\n    main: Main.hs\n"
)

func TestInitWithoutExecutable(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"no package below", map[string]string{"core.cabal": libCabal},
			[]string{"package core (core.cabal) has no executable", "nothing written", "dflow init --target library", "--target source"}},
		{"one package below has an executable", map[string]string{"core.cabal": libCabal, "app/app.cabal": appCabal},
			[]string{"has no executable", "app/app.cabal (executables app-server)", "run dflow init in app"}},
		{"several packages below have executables", map[string]string{"core.cabal": libCabal, "app/app.cabal": appCabal, "tools/cli/package.yaml": cliYAML},
			[]string{"has no executable", "Packages with executables below this directory", "  app/app.cabal (executables app-server)\n", "  tools/cli/package.yaml (executables cli)\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			_, errOut, code := runInit(t, dir)
			require.NotZero(t, code)
			for _, w := range tt.want {
				require.Contains(t, errOut, w)
			}
			_, err := os.Stat(filepath.Join(dir, "dflow.yaml"))
			require.True(t, os.IsNotExist(err), "init writes nothing when it cannot say what to run")
		})
	}
}

func TestInitTargets(t *testing.T) {
	t.Run("--target library for a library", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"core.cabal": libCabal})
		out, errOut, code := runInit(t, dir, "--target", "library")
		require.Zero(t, code, errOut)
		require.Contains(t, out, "target [library]")
		b, err := os.ReadFile(filepath.Join(dir, "dflow.yaml"))
		require.NoError(t, err)
		require.Contains(t, string(b), "\ntarget: [library]\n")
		require.Contains(t, string(b), "package_reader: cabal ")
	})
	t.Run("--target library without a library", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"app.cabal": appCabal})
		_, errOut, code := runInit(t, dir, "--target", "library")
		require.NotZero(t, code)
		require.Contains(t, errOut, "--target library: package app (app.cabal) has no library")
	})
	t.Run("an executable by default; package.yaml gets the hpack reader", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"package.yaml": cliYAML})
		_, errOut, code := runInit(t, dir)
		require.Zero(t, code, errOut)
		b, err := os.ReadFile(filepath.Join(dir, "dflow.yaml"))
		require.NoError(t, err)
		require.Contains(t, string(b), "\ntarget: [executable]\n")
		require.Contains(t, string(b), "package_reader: hpack ")
	})
	t.Run("a package file that does not read", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"old.cabal": "name: old\nversion: 1\nbuild-depends: base\n"})
		_, errOut, code := runInit(t, dir)
		require.NotZero(t, code)
		require.Contains(t, errOut, "old.cabal:3:")
		require.Contains(t, errOut, "flat .cabal format")
	})
}
