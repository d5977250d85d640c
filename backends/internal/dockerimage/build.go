package dockerimage

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distributive-flow/dflow/backends/internal/dockerengine"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// ImageSpec is how to build an image from a Rootfs.
type ImageSpec struct {
	// Tag names the image ("dflow-node:0123abcd4567").
	Tag string
	// Instructions set the image's configuration, as Dockerfile lines:
	// ENTRYPOINT, CMD, USER, WORKDIR, ENV, LABEL (no RUN, COPY, FROM).
	Instructions []string
	Labels       map[string]string
}

// building serializes builds of one tag in this process.
var building sync.Map // tag -> *sync.Mutex

// EnsureImage builds s from the tree prepare returns unless an image tagged
// s.Tag exists already; it reports whether it built one. Builds of one tag
// in this process wait for each other rather than build twice.
func EnsureImage(ctx context.Context, cli client.APIClient, s ImageSpec, prepare func() (*Rootfs, error)) (bool, error) {
	mu, _ := building.LoadOrStore(s.Tag, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if _, err := cli.ImageInspect(ctx, s.Tag); err == nil {
		return false, nil
	} else if !cerrdefs.IsNotFound(err) {
		return false, fmt.Errorf("inspect image %s: %w", s.Tag, err)
	}
	r, err := prepare()
	if err != nil {
		return false, fmt.Errorf("build image %s: %w", s.Tag, err)
	}
	return true, BuildImage(ctx, cli, r, s)
}

// BuildImage makes r into an image FROM scratch: one layer, imported with
// the engine's import API from a tar of the tree streamed to it, with
// s.Instructions applied to the image's configuration. Importing takes a
// fraction of a second where the classic builder takes about a second per
// Dockerfile instruction (it commits a layer for each).
func BuildImage(ctx context.Context, cli client.APIClient, r *Rootfs, s ImageSpec) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(r.writeTar(pw)) }()
	defer pr.Close()
	labels := dockerengine.ExtraLabels()
	for k, v := range s.Labels {
		labels[k] = v
	}
	changes := append([]string{}, s.Instructions...)
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		changes = append(changes, fmt.Sprintf("LABEL %q=%q", k, labels[k]))
	}
	resp, err := cli.ImageImport(ctx, image.ImportSource{Source: pr, SourceName: "-"}, s.Tag, image.ImportOptions{
		Changes: changes, Message: "dflow: FROM scratch",
	})
	if err != nil {
		return fmt.Errorf("build image %s: %w", s.Tag, err)
	}
	defer resp.Close()
	dec := json.NewDecoder(resp)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("build image %s: read the engine's answer: %w", s.Tag, err)
		}
		if m.Error != "" || m.ErrorDetail.Message != "" {
			msg := m.ErrorDetail.Message
			if msg == "" {
				msg = m.Error
			}
			return fmt.Errorf("build image %s: %s", s.Tag, msg)
		}
	}
	if _, err := cli.ImageInspect(ctx, s.Tag); err != nil {
		return fmt.Errorf("build image %s: imported, but: %w", s.Tag, err)
	}
	return nil
}

// writeTar writes the tree as a tar, parents first.
func (r *Rootfs) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	mtime := time.Unix(0, 0)
	for _, p := range r.paths() {
		e := r.entry(p)
		mode := int64(e.mode.Perm())
		if e.mode&os.ModeSticky != 0 {
			mode |= 0o1000
		}
		name := strings.TrimPrefix(p, "/")
		if e.dir {
			if err := tw.WriteHeader(&tar.Header{Name: name + "/", Mode: mode, ModTime: mtime, Typeflag: tar.TypeDir}); err != nil {
				return err
			}
			continue
		}
		size := int64(len(e.data))
		if e.src != "" {
			fi, err := os.Stat(e.src)
			if err != nil {
				return fmt.Errorf("rootfs: %w", err)
			}
			size = fi.Size()
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: size, ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if err := r.copyContent(tw, e); err != nil {
			return err
		}
	}
	return tw.Close()
}
