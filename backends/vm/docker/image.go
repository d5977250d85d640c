package docker

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/distributive-flow/dflow/backends/internal/dockerimage"
)

// GHCLibraries are the sonames (prefixes) of the shared libraries a
// GHC-built executable may link, put into the built node image when this
// host has them, so versions run on a node as plain processes too.
var GHCLibraries = []string{
	"libc.so.6", "libm.so.6", "libgmp.so.", "libffi.so.", "libnuma.so.", "librt.so.1",
	"libdl.so.2", "libpthread.so.0", "libutil.so.1", "libz.so.1", "libresolv.so.2",
}

// nodeImages caches the tag of the node image per binary (path, size,
// modification time): hashing the binary takes a while.
var nodeImages sync.Map // string -> string

// NodeRootfs is the tree of the node image for the dflow executable bin.
func NodeRootfs(bin string) (*dockerimage.Rootfs, error) {
	r := &dockerimage.Rootfs{}
	if err := r.AddMinimalSystem(); err != nil {
		return nil, err
	}
	if err := r.AddFile("/usr/local/bin/dflow", bin, 0o755); err != nil {
		return nil, err
	}
	if err := r.AddDir(NodeDir, 0o755); err != nil {
		return nil, err
	}
	if err := r.AddLibraries(bin); err != nil {
		return nil, err
	}
	if err := r.AddLibrariesNamed(GHCLibraries...); err != nil {
		return nil, err
	}
	return r, nil
}

// NodeImage returns the built node image's tag (dflow-node:<hash>),
// building it the first time.
func (b *Backend) NodeImage(ctx context.Context) (string, error) {
	fi, err := os.Stat(b.o.Binary)
	if err != nil {
		return "", fmt.Errorf("node image: %w", err)
	}
	key := fmt.Sprintf("%s|%d|%d", b.o.Binary, fi.Size(), fi.ModTime().UnixNano())
	tag, _ := nodeImages.Load(key)
	var r *dockerimage.Rootfs
	if tag == nil {
		if r, err = NodeRootfs(b.o.Binary); err != nil {
			return "", fmt.Errorf("node image: %w", err)
		}
		d, err := r.Digest()
		if err != nil {
			return "", fmt.Errorf("node image: %w", err)
		}
		tag = "dflow-node:" + d[:12]
		nodeImages.Store(key, tag)
	}
	spec := dockerimage.ImageSpec{
		Tag: tag.(string),
		Instructions: []string{
			"ENV LANG=C.UTF-8 PATH=/usr/local/bin",
			"WORKDIR " + NodeDir,
			`ENTRYPOINT ["/usr/local/bin/dflow"]`,
		},
		Labels: map[string]string{"dflow.role": "node-image"},
	}
	_, err = dockerimage.EnsureImage(ctx, b.cli, spec, func() (*dockerimage.Rootfs, error) {
		if r != nil {
			return r, nil
		}
		return NodeRootfs(b.o.Binary)
	})
	if err != nil {
		return "", fmt.Errorf("node image: %w", err)
	}
	return spec.Tag, nil
}

// tarFile writes a tar holding one file (and its parent directories).
func tarFile(w io.Writer, name string, data []byte, mode int64) error {
	tw := tar.NewWriter(w)
	now := time.Now()
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	return tw.Close()
}
