package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
)

// File is one artifact a builder puts in a Target's bundle.
type File struct {
	Kind, Name string // deploy.KindExecutable, ...; the executable's or package's name
	artifact.File
}

// Bundle hashes files, writes the reproducible bundle of them to
// workDir/bundle-<version>.tar.zst and returns the Target (BuildSeconds
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
// the inputs, makes o's directories absolute (the tools run in o.Dir), and
// returns the requested kinds (deduplicated, in the order asked), o, and the
// tools' environment (this process's plus o.Env). Errors begin with
// "TOOL build of PACKAGE: ".
func Prepare(tool string, d deploy.TargetDesc, o backends.BuildOptions) ([]string, backends.BuildOptions, []string, error) {
	kinds, err := validate(tool, d, o)
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

// validate checks the inputs and returns the requested kinds,
// deduplicated, in the order asked; errors name tool ("cabal build of ...").
func validate(tool string, d deploy.TargetDesc, o backends.BuildOptions) ([]string, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf(tool+" build of %s: "+format, append([]any{d.Package}, a...)...)
	}
	switch {
	case d.Package == "":
		return nil, errors.New(tool + " build: the package description has no package name")
	case d.Version == "":
		return nil, bad("the package description has no version")
	case o.Dir == "":
		return nil, bad("no package directory given (BuildOptions.Dir is empty)")
	case o.WorkDir == "":
		return nil, bad("no work directory given (BuildOptions.WorkDir is empty)")
	case len(o.Targets) == 0:
		return nil, bad("nothing to build: no target kinds given (want %s, %s or %s)", deploy.KindExecutable, deploy.KindLibrary, deploy.KindSource)
	}
	if fi, err := os.Stat(o.Dir); err != nil {
		return nil, bad("package directory: %w", err)
	} else if !fi.IsDir() {
		return nil, bad("package directory %s is not a directory", o.Dir)
	}
	var kinds []string
	seen := map[string]bool{}
	for _, k := range o.Targets {
		switch k {
		case deploy.KindExecutable:
			if len(d.Executables) == 0 {
				return nil, bad("target %q asked for, but the package has no executable", k)
			}
			for _, e := range d.Executables {
				if e.Name == "" {
					return nil, bad("an executable of the package has no name")
				}
			}
		case deploy.KindLibrary:
			if d.Library == nil {
				return nil, bad("target %q asked for, but the package has no library", k)
			}
		case deploy.KindSource:
		default:
			return nil, bad("unknown target kind %q (want %s, %s or %s)", k, deploy.KindExecutable, deploy.KindLibrary, deploy.KindSource)
		}
		if !seen[k] {
			seen[k] = true
			kinds = append(kinds, k)
		}
	}
	return kinds, nil
}
