package cabal_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/builder/cabal"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// helloDesc is what the cabal package reader gives for examples/hello.
func helloDesc(dir string) deploy.TargetDesc {
	return deploy.TargetDesc{
		File:        filepath.Join(dir, "hello.cabal"),
		Package:     "hello",
		Version:     "0.1.0.0",
		Library:     &deploy.Component{SourceDirs: []string{"src"}, Modules: []string{"Hello"}},
		Executables: []deploy.Component{{Name: "hello", MainIs: "Main.hs", SourceDirs: []string{"app"}}},
		TestSuites:  []deploy.Component{{Name: "spec", MainIs: "Spec.hs", SourceDirs: []string{"test"}}},
	}
}

var allKinds = []string{deploy.KindExecutable, deploy.KindLibrary, deploy.KindSource}

func TestValidateBeforeRunningAnything(t *testing.T) {
	// A cabal and a git that do not exist: a validation error must come first.
	b := cabal.New(cabal.Options{Cabal: "/nonexistent/cabal", Git: "/nonexistent/git"})
	dir := t.TempDir()
	noExe := helloDesc(dir)
	noExe.Executables = nil
	noLib := helloDesc(dir)
	noLib.Library = nil
	opts := func(f func(*backends.BuildOptions)) backends.BuildOptions {
		o := backends.BuildOptions{Dir: dir, WorkDir: t.TempDir(), Targets: allKinds}
		f(&o)
		return o
	}
	for _, c := range []struct {
		name string
		d    deploy.TargetDesc
		o    backends.BuildOptions
		want string
	}{
		{"unknown kind", helloDesc(dir), opts(func(o *backends.BuildOptions) { o.Targets = []string{"executable", "docker-image"} }), `unknown target kind "docker-image"`},
		{"executable without executables", noExe, opts(func(o *backends.BuildOptions) {}), `target "executable" asked for, but the package has no executable`},
		{"library without library", noLib, opts(func(o *backends.BuildOptions) { o.Targets = []string{"library"} }), `the package has no library`},
		{"empty dir", helloDesc(dir), opts(func(o *backends.BuildOptions) { o.Dir = "" }), "no package directory given"},
		{"missing dir", helloDesc(dir), opts(func(o *backends.BuildOptions) { o.Dir = filepath.Join(dir, "nope") }), "package directory: stat"},
		{"empty work dir", helloDesc(dir), opts(func(o *backends.BuildOptions) { o.WorkDir = "" }), "no work directory given"},
		{"no targets", helloDesc(dir), opts(func(o *backends.BuildOptions) { o.Targets = nil }), "nothing to build"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.Build(context.Background(), c.d, c.o)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
			require.Contains(t, err.Error(), "cabal build of hello: ")
			require.NotContains(t, err.Error(), "nonexistent", "nothing may run before the inputs are checked")
		})
	}
}

func TestVersion(t *testing.T) {
	ctx := context.Background()
	t.Run("outside a git repository", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv("GIT_CEILING_DIRECTORIES", filepath.Dir(dir))
		_, err := cabal.Version(ctx, dir)
		require.EqualError(t, err, dir+" is not in a git repository: dflow versions builds by commit; run git init && git commit")

		// Build says the same, before running cabal.
		b := cabal.New(cabal.Options{Cabal: "/nonexistent/cabal"})
		_, err = b.Build(ctx, helloDesc(dir), backends.BuildOptions{Dir: dir, WorkDir: t.TempDir(), Targets: allKinds})
		require.ErrorContains(t, err, "cabal build of hello: version: "+dir+" is not in a git repository")
	})
	t.Run("no commit yet", func(t *testing.T) {
		dir := t.TempDir()
		testsuite.Git(t, dir, "init", "--quiet")
		_, err := cabal.Version(ctx, dir)
		require.ErrorContains(t, err, "no commit yet")
	})

	repo := testsuite.HelloRepo(t, testsuite.Example(t, "hello"))
	head := testsuite.Git(t, repo, "rev-parse", "HEAD")
	version := func() string {
		v, err := cabal.Version(ctx, repo)
		require.NoError(t, err)
		return v
	}
	require.Equal(t, head, version())

	// Ignored files do not make it dirty, nor do build outputs that a
	// package without a .gitignore leaves untracked.
	testsuite.Git(t, repo, "rm", "--quiet", ".gitignore")
	testsuite.Git(t, repo, "commit", "--quiet", "--message=no .gitignore")
	head = testsuite.Git(t, repo, "rev-parse", "HEAD")
	for _, dir := range []string{"dist-newstyle", ".dflow", ".stack-work"} {
		require.NoError(t, os.MkdirAll(filepath.Join(repo, dir, "cache"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(repo, dir, "cache", "plan.json"), []byte("{}"), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(repo, ".git", "info", "exclude"), []byte("*.log\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(repo, "build.log"), []byte("x"), 0o644))
	require.Equal(t, head, version(), "ignored files and build outputs must not make the tree dirty")

	// An untracked file does.
	require.NoError(t, os.WriteFile(filepath.Join(repo, "NOTES"), []byte("x"), 0o644))
	require.Equal(t, head+"-dirty", version())
	require.NoError(t, os.Remove(filepath.Join(repo, "NOTES")))

	// So does a modified tracked file.
	appendFile(t, filepath.Join(repo, "src", "Hello.hs"), "-- changed\n")
	require.Equal(t, head+"-dirty", version())
	testsuite.Git(t, repo, "checkout", "--", ".")
	require.Equal(t, head, version())

	// Changes outside dir do not count: dir is a package in a bigger repository.
	sub := filepath.Join(repo, "src")
	require.NoError(t, os.WriteFile(filepath.Join(repo, "NOTES"), []byte("x"), 0o644))
	v, err := cabal.Version(ctx, sub)
	require.NoError(t, err)
	require.Equal(t, head, v)
}

// TestBuildHello builds examples/hello with real GHC, cabal and git.
func TestBuildHello(t *testing.T) {
	testsuite.RequireCabal(t)
	ctx := context.Background()
	repo := testsuite.HelloRepo(t, testsuite.Example(t, "hello"))
	head := testsuite.Git(t, repo, "rev-parse", "HEAD")
	cabalDir := testsuite.CabalDir(t)
	work := t.TempDir()
	b := cabal.New(cabal.Options{})
	d := helloDesc(repo)
	var log strings.Builder
	build := func(t *testing.T, targets ...string) (deploy.Target, error) {
		log.Reset()
		return b.Build(ctx, d, backends.BuildOptions{
			Dir: repo, Targets: targets, Env: []string{"CABAL_DIR=" + cabalDir}, WorkDir: work, Log: &log,
		})
	}

	begin := time.Now()
	first, err := build(t, allKinds...)
	cold := time.Since(begin)
	require.NoError(t, err, log.String())
	t.Logf("cold build (build + test + bundle): %v", cold)

	t.Run("target", func(t *testing.T) {
		require.Equal(t, "hello", first.Package)
		require.Equal(t, head, first.Version)
		require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{64}$`), first.Digest)
		require.Equal(t, filepath.Join(work, "bundle-"+head+".tar.zst"), first.BundlePath)
		sum, size, err := artifact.FileSHA256(first.BundlePath)
		require.NoError(t, err)
		require.Equal(t, first.Digest, sum)
		require.Equal(t, first.Size, size)
		require.Positive(t, first.BuildSeconds)
		require.WithinDuration(t, time.Now(), first.BuiltAt, time.Minute)
		require.Contains(t, log.String(), "Test suite spec: PASS", "the tests ran and their output went to the log")

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

		exe, _ := first.Executable("hello")
		t.Logf("bundle %d bytes; raw bin/hello %d bytes (%.0f%%); sdist %d bytes; source tar %d bytes",
			first.Size, exe.Size, 100*float64(first.Size)/float64(exe.Size), first.Artifacts[1].Size, first.Artifacts[2].Size)
	})

	t.Run("source archive holds the committed tree under a prefix", func(t *testing.T) {
		out := unpack(t, first)
		cmd := exec.Command("tar", "-tf", filepath.Join(out, "src", "hello-0.1.0.0.tar"))
		list, err := cmd.Output()
		require.NoError(t, err)
		require.Contains(t, string(list), "hello-0.1.0.0/hello.cabal\n")
		require.Contains(t, string(list), "hello-0.1.0.0/src/Hello.hs\n")
		require.NotContains(t, string(list), "dist-newstyle")
	})

	t.Run("the built executable serves and stops on SIGTERM", func(t *testing.T) {
		out := unpack(t, first)
		runHello(t, filepath.Join(out, "bin", "hello"))
	})

	t.Run("the same commit gives the same digest", func(t *testing.T) {
		begin := time.Now()
		again, err := build(t, allKinds...)
		require.NoError(t, err, log.String())
		t.Logf("warm rebuild (build + test + bundle): %v", time.Since(begin))
		require.Equal(t, first.Version, again.Version)
		require.Equal(t, first.Digest, again.Digest)
		require.Equal(t, first.Artifacts, again.Artifacts)
	})

	t.Run("the same commit built from scratch gives the same digest", func(t *testing.T) {
		require.NoError(t, os.RemoveAll(filepath.Join(repo, "dist-newstyle")))
		begin := time.Now()
		again, err := build(t, allKinds...)
		require.NoError(t, err, log.String())
		t.Logf("rebuild after rm -rf dist-newstyle: %v", time.Since(begin))
		for i := range first.Artifacts {
			require.Equal(t, first.Artifacts[i], again.Artifacts[i], "GHC output is reproducible here: %s", first.Artifacts[i].Path)
		}
		require.Equal(t, first.Digest, again.Digest)
	})

	t.Run("a dirty tree", func(t *testing.T) {
		defer testsuite.Git(t, repo, "checkout", "--", ".")
		appendFile(t, filepath.Join(repo, "src", "Hello.hs"), "-- a local change\n")
		dirty, err := build(t, allKinds...)
		require.NoError(t, err, log.String())
		require.Equal(t, head+"-dirty", dirty.Version)
		require.NotEqual(t, first.Digest, dirty.Digest)
		out := unpack(t, dirty)
		src, err := exec.Command("tar", "-xOf", filepath.Join(out, "src", "hello-0.1.0.0.tar"), "hello-0.1.0.0/src/Hello.hs").Output()
		require.NoError(t, err)
		require.Contains(t, string(src), "-- a local change", "the source archive holds the working tree")

		again, err := build(t, allKinds...)
		require.NoError(t, err, log.String())
		require.Equal(t, dirty.Digest, again.Digest, "the same dirty tree gives the same digest")
	})

	t.Run("a failing test fails the build", func(t *testing.T) {
		defer testsuite.Git(t, repo, "checkout", "--", ".")
		replaceIn(t, filepath.Join(repo, "test", "Spec.hs"), `b1 == "hello from abc123\n"`, `b1 == "hello from somebody else\n"`)
		_, err := build(t, allKinds...)
		require.Error(t, err)
		t.Logf("error:\n%v", err)
		require.Contains(t, err.Error(), "cabal build of hello: cabal test: ")
		require.Contains(t, err.Error(), "FAIL GET / answers 200 with the version", "the error ends with the test's output")
		require.Contains(t, err.Error(), "Test suite spec: FAIL")
	})

	t.Run("a compile error fails the build", func(t *testing.T) {
		defer testsuite.Git(t, repo, "checkout", "--", ".")
		replaceIn(t, filepath.Join(repo, "src", "Hello.hs"), `L.pack ("hello from " ++ version s ++ "\n")`, `L.pack (42 :: Int)`)
		_, err := build(t, deploy.KindExecutable)
		require.Error(t, err)
		t.Logf("error:\n%v", err)
		require.Contains(t, err.Error(), "cabal build of hello: cabal build: ")
		require.Contains(t, err.Error(), "src/Hello.hs:")
		require.Contains(t, err.Error(), "error:")
	})

	t.Run("cancelling kills the build", func(t *testing.T) {
		require.NoError(t, os.RemoveAll(filepath.Join(repo, "dist-newstyle")))
		ctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		begin := time.Now()
		_, err := b.Build(ctx, d, backends.BuildOptions{Dir: repo, Targets: allKinds, Env: []string{"CABAL_DIR=" + cabalDir}, WorkDir: work})
		require.Error(t, err)
		require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
		require.Less(t, time.Since(begin), 10*time.Second)
	})
}

// unpack extracts t's bundle into a temp dir.
func unpack(t *testing.T, target deploy.Target) string {
	t.Helper()
	f, err := os.Open(target.BundlePath)
	require.NoError(t, err)
	defer f.Close()
	dir := filepath.Join(t.TempDir(), "bundle")
	require.NoError(t, artifact.Unpack(f, dir, artifact.UnpackOptions{}))
	return dir
}

// runHello starts the hello executable on a free port, checks it answers,
// and stops it with SIGTERM, which it must survive with exit status 0.
func runHello(t *testing.T, exe string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "DFLOW_VERSION=x")
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()

	// No keep-alive: Warp's graceful shutdown waits for idle keep-alive
	// connections too, up to its 30 s timeout.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
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
	require.Contains(t, body, "x")
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

// lockedBuffer is a strings.Builder safe to read while a process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func replaceIn(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), old)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644))
}
