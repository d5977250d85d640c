package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/deploy"
)

// A Target's bundle has the same layout whichever builder made it:
// bin/NAME for each executable, lib/PKG-VER.tar.gz for the library (its
// source distribution), src/PKG-VER.tar for the package's tracked sources.

// Stage makes workDir and a fresh stage directory in it, for what a build
// makes besides the tools' own outputs; the caller removes it.
func Stage(workDir string) (string, error) {
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(workDir, "stage-")
}

// Executable is the bundle's bin/name: the executable built at path.
func Executable(name, path string) File {
	return File{Kind: deploy.KindExecutable, Name: name, File: artifact.File{Path: "bin/" + name, Source: path, Mode: 0o755}}
}

// Library is the bundle's lib/PKG-VER.tar.gz: the source distribution of
// d's library that `tool sdist` wrote into dir. It is an error, which says
// so, when the tool wrote none there.
func Library(tool string, d deploy.TargetDesc, dir string) (File, error) {
	name := d.Package + "-" + d.Version + ".tar.gz"
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		return File{}, fmt.Errorf("%s sdist wrote no %s (does the package file's name/version differ from %s-%s?): %w", tool, name, d.Package, d.Version, err)
	}
	return File{Kind: deploy.KindLibrary, Name: d.Package, File: artifact.File{Path: "lib/" + name, Source: path, Mode: 0o644}}, nil
}

// Source archives the package's tracked sources (SourceArchive, in r.Dir)
// into stage and returns the bundle's src/PKG-VER.tar.
func Source(ctx context.Context, git string, r Runner, d deploy.TargetDesc, stage string) (File, error) {
	name := d.Package + "-" + d.Version + ".tar"
	path := filepath.Join(stage, name)
	if err := SourceArchive(ctx, git, r, d.Package+"-"+d.Version+"/", path); err != nil {
		return File{}, err
	}
	return File{Kind: deploy.KindSource, Name: d.Package, File: artifact.File{Path: "src/" + name, Source: path, Mode: 0o644}}, nil
}
