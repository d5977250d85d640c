package testsuite

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/stretchr/testify/require"
)

// BuilderHarness is a Builder under test and what BuilderSuite needs
// besides it.
type BuilderHarness struct {
	Builder backends.Builder
	// Tool names the builder in its errors: "cabal build of hello: ...".
	Tool string
	// Env is the builders' extra environment (CABAL_DIR, STACK_ROOT): an
	// offline configuration of its own, never the user's.
	Env []string
	// Passed is what the build log says when examples/hello's test suite
	// passes ("Test suite spec: PASS").
	Passed string
	// TestStep is the step a failing test suite's error names, after
	// "TOOL build of hello: " ("cabal test: ").
	TestStep string
}

// BuiltHello is what BuilderSuite leaves for a builder's own further
// tests: the repository it built (a HelloRepo, its build directories warm),
// the work dir, what it built from, and the first, clean build.
type BuiltHello struct {
	Repo, WorkDir string
	Desc          deploy.TargetDesc
	First         deploy.Target
	// Build builds Repo again into WorkDir with the harness's
	// environment, and returns the Target and the build's log.
	Build func(t *testing.T, targets ...string) (deploy.Target, string, error)
}

// AllKinds are every target kind, in the order the suite asks for them.
var AllKinds = []string{deploy.KindExecutable, deploy.KindLibrary, deploy.KindSource}

// HelloDesc is what the package readers give for examples/hello in dir.
func HelloDesc(dir string) deploy.TargetDesc {
	return deploy.TargetDesc{
		File:        filepath.Join(dir, "hello.cabal"),
		Package:     "hello",
		Version:     "0.1.0.0",
		Library:     &deploy.Component{Name: "hello", SourceDirs: []string{"src"}, Modules: []string{"Hello"}},
		Executables: []deploy.Component{{Name: "hello", MainIs: "Main.hs", SourceDirs: []string{"app"}}},
		TestSuites:  []deploy.Component{{Name: "spec", Type: "exitcode-stdio-1.0", MainIs: "Spec.hs", SourceDirs: []string{"test"}}},
	}
}

// BuilderSuite is the conformance suite every Builder passes: it builds
// examples/hello (a HelloRepo copy) with the real tools, GHC included, and
// checks that a build runs the tests and bundles every target kind, that the
// executable serves, that the Version is the git commit (with -dirty for a
// changed tree), that the same commit gives the same Digest, and that a
// failing test suite fails the build with the suite's output. The builds
// share one repository and one work dir, in order, so that all but the
// first are warm. Callers skip it first (RequireCabal, ...) when the tools
// are missing.
func BuilderSuite(t *testing.T, h BuilderHarness) *BuiltHello {
	ctx := context.Background()
	repo := HelloRepo(t, Example(t, "hello"))
	head := Git(t, repo, "rev-parse", "HEAD")
	b := &BuiltHello{Repo: repo, WorkDir: filepath.Join(t.TempDir(), "work"), Desc: HelloDesc(repo)}
	b.Build = func(t *testing.T, targets ...string) (deploy.Target, string, error) {
		var log SyncBuffer
		tg, err := h.Builder.Build(ctx, b.Desc, backends.BuildOptions{
			Dir: repo, Targets: targets, Env: h.Env, WorkDir: b.WorkDir, Log: &log,
		})
		return tg, log.String(), err
	}
	prefix := h.Tool + " build of hello: "

	begin := time.Now()
	first, log, err := b.Build(t, AllKinds...)
	require.NoError(t, err, log)
	t.Logf("%s: cold build (build + test + bundle) of examples/hello: %v", h.Tool, time.Since(begin).Round(100*time.Millisecond))
	b.First = first

	t.Run("builds, runs the tests and bundles every kind", func(t *testing.T) {
		require.Contains(t, log, h.Passed, "the tests ran and their output went to the log")
		require.Equal(t, "hello", first.Package)
		require.Equal(t, head, first.Version, "the version is the commit; building does not make the tree dirty")
		require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{64}$`), first.Digest)
		require.Equal(t, filepath.Join(b.WorkDir, "bundle-"+head+".tar.zst"), first.BundlePath)
		sum, size, err := artifact.FileSHA256(first.BundlePath)
		require.NoError(t, err)
		require.Equal(t, first.Digest, sum, "the digest is the bundle's sha256")
		require.Equal(t, first.Size, size)
		require.Positive(t, first.BuildSeconds)
		require.WithinDuration(t, time.Now(), first.BuiltAt, 5*time.Minute)

		var paths []string
		for _, a := range first.Artifacts {
			paths = append(paths, a.Kind+" "+a.Name+" "+a.Path)
		}
		require.Equal(t, []string{
			"executable hello bin/hello",
			"library hello lib/hello-0.1.0.0.tar.gz",
			"source hello src/hello-0.1.0.0.tar",
		}, paths)

		f, err := os.Open(first.BundlePath)
		require.NoError(t, err)
		defer f.Close()
		entries, err := artifact.Entries(f)
		require.NoError(t, err)
		got := map[string]artifact.Entry{}
		for _, e := range entries {
			if e.Mode.IsRegular() {
				got[e.Path] = e
			}
		}
		require.Len(t, got, 3)
		for _, a := range first.Artifacts {
			e, ok := got[a.Path]
			require.True(t, ok, a.Path)
			require.Equal(t, a.SHA256, e.SHA256, a.Path)
			require.Equal(t, a.Size, e.Size, a.Path)
		}
		require.Equal(t, os.FileMode(0o755), got["bin/hello"].Mode.Perm())
		require.Equal(t, os.FileMode(0o644), got["lib/hello-0.1.0.0.tar.gz"].Mode.Perm())
	})

	t.Run("the source archive holds the committed tree under a prefix", func(t *testing.T) {
		out := unpackBundle(t, first)
		list, err := exec.Command("tar", "-tf", filepath.Join(out, "src", "hello-0.1.0.0.tar")).Output()
		require.NoError(t, err)
		require.Contains(t, string(list), "hello-0.1.0.0/hello.cabal\n")
		require.Contains(t, string(list), "hello-0.1.0.0/src/Hello.hs\n")
		require.NotContains(t, string(list), "dist-newstyle")
		require.NotContains(t, string(list), ".stack-work")
	})

	t.Run("the built executable serves and stops on SIGTERM", func(t *testing.T) {
		RunHello(t, filepath.Join(unpackBundle(t, first), "bin", "hello"))
	})

	t.Run("the same commit gives the same digest", func(t *testing.T) {
		begin := time.Now()
		again, log, err := b.Build(t, AllKinds...)
		require.NoError(t, err, log)
		t.Logf("%s: warm rebuild: %v", h.Tool, time.Since(begin).Round(100*time.Millisecond))
		require.Equal(t, first.Version, again.Version)
		require.Equal(t, first.Artifacts, again.Artifacts)
		require.Equal(t, first.Digest, again.Digest)
	})

	t.Run("a dirty tree is COMMIT-dirty, and the same dirty tree gives the same digest", func(t *testing.T) {
		defer Git(t, repo, "checkout", "--", ".")
		AppendFile(t, filepath.Join(repo, "src", "Hello.hs"), "-- a local change\n")
		dirty, log, err := b.Build(t, AllKinds...)
		require.NoError(t, err, log)
		require.Equal(t, head+"-dirty", dirty.Version)
		require.NotEqual(t, first.Digest, dirty.Digest)
		src, err := exec.Command("tar", "-xOf", filepath.Join(unpackBundle(t, dirty), "src", "hello-0.1.0.0.tar"), "hello-0.1.0.0/src/Hello.hs").Output()
		require.NoError(t, err)
		require.Contains(t, string(src), "-- a local change", "the source archive holds the working tree")

		again, log, err := b.Build(t, AllKinds...)
		require.NoError(t, err, log)
		require.Equal(t, dirty.Digest, again.Digest)
	})

	t.Run("a failing test suite fails the build with its output", func(t *testing.T) {
		defer Git(t, repo, "checkout", "--", ".")
		spec := filepath.Join(repo, "test", "Spec.hs")
		src, err := os.ReadFile(spec)
		require.NoError(t, err)
		const pass, fail = `b1 == "hello from abc123\n"`, `b1 == "hello from somebody else\n"`
		require.Contains(t, string(src), pass, "examples/hello/test/Spec.hs changed: update BuilderSuite")
		require.NoError(t, os.WriteFile(spec, []byte(strings.Replace(string(src), pass, fail, 1)), 0o644))
		_, _, err = b.Build(t, AllKinds...)
		require.Error(t, err)
		t.Logf("error:\n%v", err)
		require.Contains(t, err.Error(), prefix+h.TestStep)
		require.Contains(t, err.Error(), "FAIL GET / answers 200 with the version", "the error ends with the test's output")
	})
	return b
}

// unpackBundle extracts target's bundle into a temp dir.
func unpackBundle(t *testing.T, target deploy.Target) string {
	t.Helper()
	f, err := os.Open(target.BundlePath)
	require.NoError(t, err)
	defer f.Close()
	dir := filepath.Join(t.TempDir(), "bundle")
	require.NoError(t, artifact.Unpack(f, dir, artifact.UnpackOptions{}))
	return dir
}

// AppendFile appends s to the file at path, which must exist.
func AppendFile(t testing.TB, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// RunHello starts the hello executable exe on a free port, checks that it
// answers with its version, and stops it with SIGTERM, which it must
// survive with exit status 0.
func RunHello(t *testing.T, exe string) {
	t.Helper()
	port := FreePort(t)

	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "HOST=127.0.0.1", "DFLOW_VERSION=x")
	stderr := &SyncBuffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()

	// No keep-alive: Warp's graceful shutdown waits for idle keep-alive
	// connections too, up to its 30 s timeout.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	get := func(path string) (int, string, error) {
		resp, err := client.Get(base + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _, err := get("/health")
		if err == nil {
			require.Equal(t, http.StatusOK, code)
			break
		}
		require.True(t, time.Now().Before(deadline), "hello never answered: %v\n%s", err, stderr.String())
		time.Sleep(50 * time.Millisecond)
	}
	code, body, err := get("/")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "hello from x\n", body)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "hello must exit 0 on SIGTERM\n%s", stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("hello did not exit within 15s of SIGTERM\n%s", stderr.String())
	}
}
