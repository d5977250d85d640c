package build

import (
	"bytes"
	"context"
	"fmt"
	"strings"
)

// dirtyIgnored are paths under the package directory that never make a tree
// dirty even when they are not in .gitignore: the build directories of cabal
// and stack, and dflow's own state directory. Building must not change the
// version of what is built.
var dirtyIgnored = []string{"dist-newstyle", ".stack-work", ".dflow"}

// Version returns the git commit hash of HEAD of the repository dir is in,
// with "-dirty" appended when `git status` shows changes under dir: modified,
// staged, deleted or untracked files (ignored files, and dist-newstyle,
// .stack-work and .dflow directly under dir, do not count). git is the git
// executable, env the whole environment it runs with. A dir outside any git
// repository, or in one with no commit yet, is an error.
func Version(ctx context.Context, git, dir string, env []string) (string, error) {
	r := Runner{Dir: dir, Env: env, Quiet: true}
	if _, err := r.Run(ctx, git, "rev-parse", "--show-toplevel"); err != nil {
		if strings.Contains(err.Error(), "not a git repository") {
			return "", fmt.Errorf("%s is not in a git repository: dflow versions builds by commit; run git init && git commit", dir)
		}
		return "", fmt.Errorf("version of %s: %w", dir, err)
	}
	out, err := r.Run(ctx, git, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
	if err != nil && ctx.Err() != nil {
		return "", fmt.Errorf("version of %s: %w", dir, err)
	}
	if err != nil {
		return "", fmt.Errorf("%s is in a git repository with no commit yet: dflow versions builds by commit; run git commit", dir)
	}
	head := strings.TrimSpace(string(out))
	args := []string{"--no-optional-locks", "status", "--porcelain", "--untracked-files=normal", "--", "."}
	for _, p := range dirtyIgnored {
		args = append(args, ":(exclude)"+p)
	}
	out, err = r.Run(ctx, git, args...)
	if err != nil {
		return "", fmt.Errorf("version of %s: %w", dir, err)
	}
	if len(bytes.TrimSpace(out)) > 0 {
		return head + "-dirty", nil
	}
	return head, nil
}

// SourceArchive writes a tar of the tracked files of r.Dir (the package
// directory) to path, every entry under prefix. A clean tree gives HEAD's
// files; a dirty one gives the working tree's tracked files (staged or not)
// through a `git stash create` commit. That commit is made with a fixed
// identity and HEAD's dates, so the same tree gives the same commit and the
// same bytes (git archive stamps entries with the commit's time and the
// archive with the commit's id). Running git archive in the package
// directory limits the archive to it and roots the paths there, when the
// package is a subdirectory of the repository.
func SourceArchive(ctx context.Context, git string, r Runner, prefix, path string) error {
	q := r
	q.Quiet = true
	out, err := q.Run(ctx, git, "log", "-1", "--format=%ct")
	if err != nil {
		return err
	}
	date := "@" + strings.TrimSpace(string(out)) + " +0000"
	q.Env = append(append([]string(nil), r.Env...),
		"GIT_AUTHOR_NAME=dflow", "GIT_AUTHOR_EMAIL=dflow@localhost", "GIT_AUTHOR_DATE="+date,
		"GIT_COMMITTER_NAME=dflow", "GIT_COMMITTER_EMAIL=dflow@localhost", "GIT_COMMITTER_DATE="+date)
	out, err = q.Run(ctx, git, "stash", "create", "dflow build")
	if err != nil {
		return err
	}
	tree := strings.TrimSpace(string(out))
	if tree == "" { // nothing tracked changed
		tree = "HEAD"
	}
	_, err = r.Run(ctx, git, "archive", "--format=tar", "--prefix="+prefix, "--output="+path, tree)
	return err
}
