package testsuite

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// RequireCabal skips t, loudly, unless ghc and cabal are on PATH. Tests that
// build Haskell (the cabal builder, end-to-end runs of examples/hello) call it
// first; nothing else is a reason to skip them.
func RequireCabal(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ghc", "cabal"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED: %s is not on PATH, so this test cannot build the Haskell example; "+
				"install it: apt-get install ghc cabal-install libghc-warp-dev", tool)
		}
	}
}

// CabalDir makes an empty CABAL_DIR for offline builds and returns it; pass
// "CABAL_DIR="+dir in the build's environment. Its config file exists and
// names no package repository, so cabal never tries the network and builds
// from the installed packages (the global package database: Debian's
// libghc-*-dev). The file must exist: without one, cabal 3.4 writes a default
// config naming hackage.haskell.org and fails when it cannot reach it. The
// user's ~/.cabal is never touched.
func CabalDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cabal")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	config := "-- dflow tests: offline, no repository stanza; packages come from the global package db.\n"
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Example returns the absolute path of examples/<name> in this repository.
func Example(t testing.TB, name string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testsuite: cannot locate the repository")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "examples", name)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("testsuite: example %s: %v", name, err)
	}
	return dir
}

// HelloRepo copies the package at srcDir (usually Example(t, "hello")) into a
// temp directory and makes that a git repository with one commit of all of it,
// and returns the copy's path. Build outputs of a developer's checkout
// (dist-newstyle, .stack-work, .dflow, .git) are not copied. Git runs with an
// isolated configuration and a fixed identity and date, so the same sources
// give the same commit hash.
func HelloRepo(t testing.TB, srcDir string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(srcDir))
	if err := copyTree(srcDir, dst); err != nil {
		t.Fatalf("testsuite: copy %s: %v", srcDir, err)
	}
	Git(t, dst, "init", "--quiet", "--initial-branch=main")
	Git(t, dst, "add", "--all")
	Git(t, dst, "commit", "--quiet", "--no-verify", "--message=initial")
	return dst
}

// Git runs git with args in dir and returns its trimmed standard output,
// failing t on error. It ignores the user's and the system's git config and
// sets a fixed author, committer and date (2026-01-01 UTC).
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=dflow test", "GIT_AUTHOR_EMAIL=test@dflow.invalid", "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z",
		"GIT_COMMITTER_NAME=dflow test", "GIT_COMMITTER_EMAIL=test@dflow.invalid", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// copyTree copies the regular files and directories under src to dst,
// keeping permission bits, skipping build outputs and .git.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if e.IsDir() {
			switch e.Name() {
			case "dist-newstyle", ".stack-work", ".dflow", ".git":
				if rel != "." {
					return filepath.SkipDir
				}
			}
			return os.MkdirAll(target, 0o755)
		}
		if !e.Type().IsRegular() {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// ChangeHello changes the example app in dir (a HelloRepo copy) so that its
// binary differs but its tests still pass (the 404 body says #n), commits
// the change and returns the new commit hash.
func ChangeHello(t testing.TB, dir string, n int) string {
	t.Helper()
	return ChangeHelloTo(t, dir, fmt.Sprintf("#%d", n))
}

// ChangeHelloTo is ChangeHello with the text the 404 body ends with.
func ChangeHelloTo(t testing.TB, dir, text string) string {
	t.Helper()
	f := filepath.Join(dir, "src", "Hello.hs")
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`text status404 "not found[^"]*"`)
	if !re.Match(b) {
		t.Fatalf("testsuite: %s no longer answers 404 with \"not found\"; update ChangeHelloTo", f)
	}
	b = re.ReplaceAll(b, []byte(fmt.Sprintf(`text status404 "not found %s\n"`, text)))
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	Git(t, dir, "commit", "--quiet", "--all", "--message=hello: "+text)
	return Git(t, dir, "rev-parse", "HEAD")
}
