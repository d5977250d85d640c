package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/internal/dockerengine"
	"github.com/distributive-flow/dflow/backends/internal/dockerimage"
	"github.com/distributive-flow/dflow/backends/internal/nodeagent"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/docker/docker/client"
	"golang.org/x/crypto/ssh"
)

// Name is the backend's name in dflow.yaml (backends.container) and
// --container-backend.
const Name = "docker"

// AppDir is where an app image holds the Target's executables: the bundle
// path bin/hello is /app/bin/hello. It is the app's working directory.
const AppDir = "/app"

// AppUser is the user an app runs as in its container: nobody.
const AppUser = "65534:65534"

// Options configure the backend.
type Options struct {
	// Client reaches the Docker engine the nodes use; default
	// dockerengine.Connect().
	Client client.APIClient
	// Artifacts is the control plane's artifact store, which holds the
	// Targets' bundles.
	Artifacts *artifact.Store
	// WorkDir is scratch space for unpacking bundles; default os.TempDir().
	WorkDir string
	// Signer signs requests to the node agents (Start and Stop need it).
	Signer ssh.Signer
}

// Backend turns Targets into images and has node agents run them.
type Backend struct {
	o Options
}

var _ backends.ContainerBackend = (*Backend)(nil)

// New returns the backend.
func New(o Options) (*Backend, error) {
	if o.Artifacts == nil {
		return nil, errors.New("docker container backend: Artifacts is required")
	}
	if o.Client == nil {
		c, err := dockerengine.Connect()
		if err != nil {
			return nil, fmt.Errorf("docker container backend: %w", err)
		}
		o.Client = c
	}
	if o.WorkDir == "" {
		o.WorkDir = os.TempDir()
	}
	return &Backend{o: o}, nil
}

// ImageRef is the image Containerize makes for t.
func ImageRef(t deploy.Target) string {
	d := t.Digest
	if len(d) > 12 {
		d = d[:12]
	}
	return "dflow-app/" + repoName(t.Package) + ":" + d
}

// repoName makes s a valid Docker repository path component.
func repoName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), ".-_")
	if out == "" {
		out = "app"
	}
	return out
}

// Containerize makes the image of t: FROM scratch, t's executables under
// AppDir, the shared libraries they link (ldd on this host), /etc/passwd,
// /tmp; user nobody, LANG=C.UTF-8. The image is tagged ImageRef(t) and
// built once: when the tag exists, nothing is rebuilt (a bundle's digest
// names its content). t's bundle must be in Options.Artifacts.
func (b *Backend) Containerize(ctx context.Context, t deploy.Target) (backends.Container, error) {
	ref := ImageRef(t)
	var exes []deploy.Artifact
	for _, a := range t.Artifacts {
		if a.Kind == deploy.KindExecutable {
			exes = append(exes, a)
		}
	}
	if len(exes) == 0 {
		return backends.Container{}, fmt.Errorf("containerize %s (version %s): the target has no executable", t.Package, deploy.ShortVersion(t.Version))
	}
	var tmp string
	defer func() {
		if tmp != "" {
			_ = os.RemoveAll(tmp)
		}
	}()
	spec := dockerimage.ImageSpec{
		Tag: ref,
		Instructions: []string{
			"ENV LANG=C.UTF-8",
			"USER " + AppUser,
			"WORKDIR " + AppDir,
			fmt.Sprintf("ENTRYPOINT [%q]", path.Join(AppDir, exes[0].Path)),
		},
		Labels: map[string]string{
			"dflow.package": t.Package, "dflow.version": t.Version, "dflow.digest": t.Digest,
		},
	}
	built, err := dockerimage.EnsureImage(ctx, b.o.Client, spec, func() (*dockerimage.Rootfs, error) {
		var err error
		if tmp, err = os.MkdirTemp(b.o.WorkDir, "dflow-containerize-"); err != nil {
			return nil, err
		}
		f, _, err := b.o.Artifacts.Open(t.Digest)
		if err != nil {
			return nil, fmt.Errorf("open bundle %s: %w", t.Digest, err)
		}
		defer f.Close()
		dir := filepath.Join(tmp, "bundle")
		if err := artifact.Unpack(f, dir, artifact.UnpackOptions{}); err != nil {
			return nil, fmt.Errorf("unpack bundle %s: %w", t.Digest, err)
		}
		r := &dockerimage.Rootfs{}
		if err := r.AddMinimalSystem(); err != nil {
			return nil, err
		}
		for _, a := range exes {
			src := filepath.Join(dir, filepath.FromSlash(a.Path))
			if err := r.AddFile(path.Join(AppDir, a.Path), src, 0o755); err != nil {
				return nil, err
			}
			if err := r.AddLibraries(src); err != nil {
				return nil, err
			}
		}
		return r, nil
	})
	if err != nil {
		return backends.Container{}, fmt.Errorf("containerize %s (version %s): %w", t.Package, deploy.ShortVersion(t.Version), err)
	}
	return backends.Container{Package: t.Package, Version: t.Version, Digest: t.Digest, Image: ref, Built: built}, nil
}

// Start has node n's agent run c's image as a container, process o.ID
// (its entrypoint AppDir/o.Exec), and waits for its readiness gate. The
// node's agent must reach the Docker engine the image is on.
func (b *Backend) Start(ctx context.Context, c backends.Container, n deploy.Node, o backends.StartOptions) (backends.Process, error) {
	if c.Image == "" {
		return backends.Process{}, fmt.Errorf("start %s on node %d: container of %s (version %s) has no image: Containerize it with the %s backend first", o.ID, n.Index, c.Package, deploy.ShortVersion(c.Version), Name)
	}
	return nodeagent.Start(ctx, b.o.Signer, c, n, o)
}

// Stop has p's node's agent stop its container; a process that is gone is
// no error.
func (b *Backend) Stop(ctx context.Context, p backends.Process, o backends.StopOptions) error {
	return nodeagent.Stop(ctx, b.o.Signer, p, o)
}
