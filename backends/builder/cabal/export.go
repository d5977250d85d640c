package cabal

import (
	"context"
	"io"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
)

// These are the parts of the cabal builder that other builders share (the
// stack builder checks its inputs, runs its tools, versions and archives
// sources the same way).

// Validate checks a build's inputs as Build does and returns the requested
// target kinds, deduplicated, in the order asked. Errors begin with
// "TOOL build of PACKAGE: ".
func Validate(tool string, d deploy.TargetDesc, o backends.BuildOptions) ([]string, error) {
	return validateFor(tool, d, o)
}

// Run runs name with args in dir with env (the whole environment), teeing
// standard output and error to log (nil discards), and returns standard
// output. A failure's error ends with the last lines of the tool's output;
// a cancelled ctx kills the tool's whole process group.
func Run(ctx context.Context, dir string, env []string, log io.Writer, name string, args ...string) ([]byte, error) {
	return runner{dir: dir, env: env, log: log}.run(ctx, name, args...)
}

// VersionWith is Version with a git executable and an environment.
func VersionWith(ctx context.Context, git, dir string, env []string) (string, error) {
	return version(ctx, git, dir, env)
}

// SourceArchive writes a tar of dir's tracked files to path, every entry
// under prefix, as Build's source target does: HEAD's files for a clean
// tree; for a dirty one, the working tree's tracked files through a
// `git stash create` commit with a fixed identity and HEAD's dates.
func SourceArchive(ctx context.Context, git, dir string, env []string, log io.Writer, prefix, path string) error {
	b := &Builder{git: git}
	return b.sourceArchive(ctx, runner{dir: dir, env: env, log: log}, prefix, path)
}

// LastLine is the last non-empty line of out, trimmed.
func LastLine(out []byte) string { return lastLine(out) }
