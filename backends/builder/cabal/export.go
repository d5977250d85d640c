package cabal

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
)

// These are the parts of the cabal builder that other builders share (the
// stack builder prepares its inputs, runs its tools, versions and archives
// sources and bundles the same way).

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

// File is one artifact a builder puts in a Target's bundle.
type File struct {
	Kind, Name string // deploy.KindExecutable, ...; the executable's or package's name
	artifact.File
}

// Bundle hashes files, writes the reproducible bundle of them to
// WorkDir/bundle-<version>.tar.zst and returns the Target (BuildSeconds
// counted from start).
func Bundle(pkg, version string, files []File, workDir string, start time.Time) (deploy.Target, error) {
	t := deploy.Target{Package: pkg, Version: version}
	bundleFiles := make([]artifact.File, len(files))
	for i, f := range files {
		sum, size, err := artifact.FileSHA256(f.Source)
		if err != nil {
			return t, err
		}
		t.Artifacts = append(t.Artifacts, deploy.Artifact{Kind: f.Kind, Name: f.Name, Path: f.Path, SHA256: sum, Size: size})
		bundleFiles[i] = f.File
	}
	t.BundlePath = filepath.Join(workDir, "bundle-"+version+".tar.zst")
	var err error
	if t.Digest, t.Size, err = artifact.WriteBundleFile(t.BundlePath, bundleFiles); err != nil {
		return t, err
	}
	t.BuiltAt = time.Now().UTC()
	t.BuildSeconds = t.BuiltAt.Sub(start).Seconds()
	return t, nil
}

// Prepare is what every builder does before it runs its tools: it checks
// the inputs (as Validate does), makes o's directories absolute (the tools
// run in o.Dir), and returns the requested kinds, o, and the tools'
// environment (this process's plus o.Env). Errors begin with
// "TOOL build of PACKAGE: ".
func Prepare(tool string, d deploy.TargetDesc, o backends.BuildOptions) ([]string, backends.BuildOptions, []string, error) {
	kinds, err := validateFor(tool, d, o)
	if err != nil {
		return nil, o, nil, err
	}
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return nil, o, nil, fmt.Errorf("%s build of %s: package directory: %w", tool, d.Package, err)
	}
	if o.WorkDir, err = filepath.Abs(o.WorkDir); err != nil {
		return nil, o, nil, fmt.Errorf("%s build of %s: work directory: %w", tool, d.Package, err)
	}
	return kinds, o, append(os.Environ(), o.Env...), nil
}
