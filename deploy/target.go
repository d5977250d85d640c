package deploy

import "time"

// Artifact kinds a Target can hold (the values of dflow.yaml's target:).
const (
	KindExecutable = "executable"
	KindLibrary    = "library"
	KindSource     = "source"
)

// Target is what a builder returns: the built artifacts of one package,
// bundled into one reproducible archive. Workflows carry it by value: it
// holds digests and paths, never the bytes.
type Target struct {
	Package string `json:"package"`
	// Version is the git commit hash of the tree that was built, with
	// "-dirty" appended when the working tree had uncommitted changes.
	Version string `json:"version"`
	// Digest is the hex sha256 of the bundle (a reproducible tar.zst):
	// building the same commit twice gives the same digest.
	Digest string `json:"digest"`
	// Size is the bundle's size in bytes.
	Size      int64      `json:"size"`
	Artifacts []Artifact `json:"artifacts"`
	BuiltAt   time.Time  `json:"built_at"`
	// BuildSeconds is how long the build (with its tests) took.
	BuildSeconds float64 `json:"build_seconds"`
	// BundlePath is where the builder left the bundle on the machine that
	// built it; the build activity moves it into the artifact store.
	BundlePath string `json:"-"`
}

// Artifact is one file inside a Target's bundle.
type Artifact struct {
	Kind   string `json:"kind"`   // KindExecutable, KindLibrary or KindSource
	Name   string `json:"name"`   // executable name, package name
	Path   string `json:"path"`   // slash path inside the bundle: bin/hello, lib/hello-0.1.0.0.tar.gz, src/hello.tar
	SHA256 string `json:"sha256"` // hex sha256 of the file
	Size   int64  `json:"size"`
}

// Executable returns the executable artifact named name, or the first
// executable when name is "".
func (t Target) Executable(name string) (Artifact, bool) {
	for _, a := range t.Artifacts {
		if a.Kind == KindExecutable && (name == "" || a.Name == name) {
			return a, true
		}
	}
	return Artifact{}, false
}

// ShortDigest is a digest cut to its first 12 characters, as dflow prints
// it (a shorter string is returned as is).
func ShortDigest(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// ShortVersion is the version cut to 12 characters (plus "-dirty").
func ShortVersion(v string) string {
	const n = 12
	dirty := ""
	if len(v) > len("-dirty") && v[len(v)-len("-dirty"):] == "-dirty" {
		v, dirty = v[:len(v)-len("-dirty")], "-dirty"
	}
	if len(v) > n {
		v = v[:n]
	}
	return v + dirty
}
