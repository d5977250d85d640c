package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	godigest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/artifacts/internal/verify"
)

// Media types of a bundle stored as an OCI artifact.
const (
	// ArtifactType is the manifest's artifactType.
	ArtifactType = "application/vnd.dflow.bundle.v1"
	// LayerMediaType is the media type of the one layer, the bundle's bytes
	// (a tar.zst, see package artifact).
	LayerMediaType = "application/vnd.dflow.bundle.v1.tar+zstd"
)

// TagPrefix starts the tag of every bundle: TagPrefix + digest.
const TagPrefix = "sha256-"

// maxManifest bounds the manifest Stat and Get read (ours are ~500 bytes).
const maxManifest = 1 << 20

// manifestAttempts is how many times Put pushes a manifest the registry
// answers 400.
const manifestAttempts = 5

// Tag is the tag of the bundle with that digest.
func Tag(digest string) string { return TagPrefix + digest }

// Options configure a Store.
type Options struct {
	// PlainHTTP talks HTTP instead of HTTPS (oci+http://).
	PlainHTTP bool
	// Credentials gives the registry's credentials; nil: the Docker
	// configuration and its credential helpers (credentials.NewStoreFromDocker).
	Credentials credentials.Store
	// HTTPClient carries the requests; nil: oras-go's retrying client.
	HTTPClient *http.Client
	// TempDir holds the spool of a Put of unknown size; "": os.TempDir().
	TempDir string
}

// Store is an artifacts.Store in one repository of an OCI registry.
type Store struct {
	repo    *remote.Repository
	name    string // HOST[:PORT]/REPO, for messages
	tempDir string
}

// New is the store in the repository repo ("team/dflow") of the registry at
// host ("ghcr.io", "127.0.0.1:5000"). It makes no request.
func New(host, repo string, o Options) (*Store, error) {
	name := host + "/" + repo
	r, err := remote.NewRepository(name)
	if err != nil {
		return nil, fmt.Errorf("oci store %s: %w", name, err)
	}
	if r.Reference.Reference != "" {
		return nil, fmt.Errorf("oci store %s: name a repository, without a tag or digest", name)
	}
	r.PlainHTTP = o.PlainHTTP
	creds := o.Credentials
	if creds == nil {
		ds, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
		if err != nil {
			return nil, fmt.Errorf("oci store %s: read the Docker configuration for credentials: %w", name, err)
		}
		creds = ds
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = retry.DefaultClient
	}
	client := &auth.Client{Client: hc, Cache: auth.NewCache(), Credential: credentials.Credential(creds)}
	client.SetUserAgent("dflow")
	r.Client = client
	// Our manifests have no subject: no referrers index to keep on delete.
	_ = r.SetReferrersCapability(false)
	return &Store{repo: r, name: name, tempDir: o.TempDir}, nil
}

func (s *Store) String() string { return s.name }

// fail wraps err as "oci OP sha256:DIGEST in NAME: err", turning the
// registry's "not found" into artifact.ErrNotFound.
func (s *Store) fail(op, digest string, err error) error {
	what := "oci " + op
	if digest != "" {
		what += " sha256:" + digest
	}
	if errors.Is(err, errdef.ErrNotFound) || isStatus(err, http.StatusNotFound) {
		return fmt.Errorf("%s in %s: %w: %w", what, s.name, artifact.ErrNotFound, err)
	}
	if errors.Is(err, auth.ErrBasicCredentialNotFound) || isStatus(err, http.StatusUnauthorized) || isStatus(err, http.StatusForbidden) {
		host := s.repo.Reference.Registry
		return fmt.Errorf("%s in %s: not authorized; log in with `docker login %s` (or `oras login %s`): dflow reads the Docker configuration and its credential helpers: %w", what, s.name, host, host, err)
	}
	if isStatus(err, http.StatusMethodNotAllowed) && op == "delete" {
		return fmt.Errorf("%s in %s: the registry does not allow deletes (distribution: storage.delete.enabled: true): %w", what, s.name, err)
	}
	return fmt.Errorf("%s in %s: %w", what, s.name, err)
}

func isStatus(err error, code int) bool {
	var e *errcode.ErrorResponse
	return errors.As(err, &e) && e.StatusCode == code
}

// layer reads the bundle's manifest and returns its layer and the
// manifest's descriptor. No tag: artifact.ErrNotFound.
func (s *Store) layer(ctx context.Context, op, digest string) (layer, manifest ocispec.Descriptor, err error) {
	desc, rc, err := s.repo.FetchReference(ctx, Tag(digest))
	if err != nil {
		return layer, manifest, s.fail(op, digest, err)
	}
	defer rc.Close()
	if desc.Size > maxManifest {
		return layer, manifest, s.fail(op, digest, fmt.Errorf("manifest of tag %s is %d bytes, more than the %d a bundle's has", Tag(digest), desc.Size, maxManifest))
	}
	b, err := io.ReadAll(verify.Reader(io.LimitReader(rc, maxManifest+1), desc.Digest.Encoded(), desc.Size))
	if err != nil {
		return layer, manifest, s.fail(op, digest, fmt.Errorf("read the manifest of tag %s: %w", Tag(digest), err))
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return layer, manifest, s.fail(op, digest, fmt.Errorf("manifest of tag %s: %w", Tag(digest), err))
	}
	want := godigest.NewDigestFromEncoded(godigest.SHA256, digest)
	for _, l := range m.Layers {
		if l.Digest == want {
			return l, desc, nil
		}
	}
	return layer, manifest, s.fail(op, digest, fmt.Errorf("tag %s is not a dflow bundle: its manifest (artifactType %q) has no layer %s", Tag(digest), m.ArtifactType, want))
}

// Put pushes the bundle's blob, the empty config and the manifest, tagged
// Tag(digest) in the same request. A tag that exists already: nothing is
// read or pushed. The blob's upload is verified while it is sent: content
// that does not match fails the upload before the registry commits it. A
// Put of unknown size (-1) spools the content to a temp file first, as the
// registry wants the length up front.
func (s *Store) Put(ctx context.Context, digest string, r io.Reader, size int64) error {
	if err := verify.Digest(digest); err != nil {
		return fmt.Errorf("oci put: %w", err)
	}
	if size < -1 {
		return fmt.Errorf("oci put sha256:%s: negative size %d", digest, size)
	}
	if _, err := s.repo.Resolve(ctx, Tag(digest)); err == nil {
		return nil
	} else if !errors.Is(err, errdef.ErrNotFound) && !isStatus(err, http.StatusNotFound) {
		return s.fail("put", digest, err)
	}
	if size < 0 {
		f, n, err := s.spool(ctx, digest, r)
		if err != nil {
			return err
		}
		defer f.Close()
		r, size = f, n
	}
	layer := ocispec.Descriptor{
		MediaType: LayerMediaType,
		Digest:    godigest.NewDigestFromEncoded(godigest.SHA256, digest),
		Size:      size,
	}
	content := verify.Reader(verify.Context(ctx, r), digest, size)
	if ok, err := s.repo.Blobs().Exists(ctx, layer); err != nil {
		return s.fail("put", digest, fmt.Errorf("look for the bundle's blob: %w", err))
	} else if ok {
		// Left by a deleted bundle or sent by a concurrent Put: check the
		// content all the same, without sending it again.
		_, err = io.Copy(io.Discard, content)
		if err != nil {
			return fmt.Errorf("oci put sha256:%s in %s: %w", digest, s.name, err)
		}
	} else if err := s.repo.Push(ctx, layer, content); err != nil {
		if errors.Is(err, artifact.ErrDigestMismatch) {
			return fmt.Errorf("oci put sha256:%s in %s: %w", digest, s.name, err)
		}
		return s.fail("put", digest, fmt.Errorf("push the bundle: %w", err))
	}
	config := ocispec.DescriptorEmptyJSON
	if ok, err := s.repo.Blobs().Exists(ctx, config); err != nil {
		return s.fail("put", digest, fmt.Errorf("look for the empty config: %w", err))
	} else if !ok {
		if err := s.repo.Push(ctx, config, bytes.NewReader(config.Data)); err != nil {
			return s.fail("put", digest, fmt.Errorf("push the empty config: %w", err))
		}
	}
	m, desc, err := Manifest(layer)
	if err != nil {
		return s.fail("put", digest, err)
	}
	// A registry that is still linking a blob another Put sent at the same
	// time answers 400 (blob unknown, digest invalid) for a moment.
	for attempt := 1; ; attempt++ {
		err = s.repo.PushReference(ctx, desc, bytes.NewReader(m), Tag(digest))
		if err == nil || !isStatus(err, http.StatusBadRequest) || attempt == manifestAttempts {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
	if err != nil {
		return s.fail("put", digest, fmt.Errorf("push the manifest: %w", err))
	}
	return nil
}

// Manifest is the manifest of the bundle whose blob is layer, and its
// descriptor: always the same bytes for the same layer.
func Manifest(layer ocispec.Descriptor) ([]byte, ocispec.Descriptor, error) {
	config := ocispec.DescriptorEmptyJSON
	config.Data = nil
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Config:       config,
		Layers:       []ocispec.Descriptor{layer},
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, ocispec.Descriptor{}, fmt.Errorf("encode the manifest: %w", err)
	}
	desc := ocispec.Descriptor{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Digest:       godigest.FromBytes(b),
		Size:         int64(len(b)),
	}
	return b, desc, nil
}

// spool copies r to an unlinked temp file, checking the digest, and returns
// the file (at its start) and the content's size.
func (s *Store) spool(ctx context.Context, digest string, r io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp(s.tempDir, "dflow-oci-put-*")
	if err != nil {
		return nil, 0, fmt.Errorf("oci put sha256:%s: spool: %w", digest, err)
	}
	_ = os.Remove(f.Name()) // the open file keeps the bytes
	n, err := io.Copy(f, verify.Reader(verify.Context(ctx, r), digest, -1))
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("oci put sha256:%s in %s: %w", digest, s.name, err)
	}
	return f, n, nil
}

// Get fetches the bundle's blob through its manifest; the reader checks the
// digest and size as it is read.
func (s *Store) Get(ctx context.Context, digest string) (io.ReadCloser, error) {
	if err := verify.Digest(digest); err != nil {
		return nil, fmt.Errorf("oci get: %w", err)
	}
	layer, _, err := s.layer(ctx, "get", digest)
	if err != nil {
		return nil, err
	}
	rc, err := s.repo.Blobs().Fetch(ctx, layer)
	if err != nil {
		return nil, s.fail("get", digest, err)
	}
	return verify.ReadCloser(rc, digest, layer.Size), nil
}

// Stat reads the bundle's manifest (one request). ModTime is zero: a
// registry keeps no upload time.
func (s *Store) Stat(ctx context.Context, digest string) (artifact.Blob, error) {
	if err := verify.Digest(digest); err != nil {
		return artifact.Blob{}, fmt.Errorf("oci stat: %w", err)
	}
	layer, _, err := s.layer(ctx, "stat", digest)
	if err != nil {
		return artifact.Blob{}, err
	}
	return artifact.Blob{Digest: digest, Size: layer.Size}, nil
}

// List reads every page of the repository's tags and keeps the bundles'
// (TagPrefix + a valid digest). A repository that does not exist yet holds
// nothing.
func (s *Store) List(ctx context.Context) ([]string, error) {
	out := []string{}
	err := s.repo.Tags(ctx, "", func(tags []string) error {
		for _, t := range tags {
			if d, ok := strings.CutPrefix(t, TagPrefix); ok && artifact.ValidDigest(d) {
				out = append(out, d)
			}
		}
		return nil
	})
	if err != nil && !isStatus(err, http.StatusNotFound) {
		return nil, s.fail("list", "", err)
	}
	sort.Strings(out)
	return out, nil
}

// Delete deletes the bundle's manifest (and so its tag). A missing tag, or a
// manifest deleted meanwhile, is no error.
func (s *Store) Delete(ctx context.Context, digest string) error {
	if err := verify.Digest(digest); err != nil {
		return fmt.Errorf("oci delete: %w", err)
	}
	desc, err := s.repo.Resolve(ctx, Tag(digest))
	if errors.Is(err, errdef.ErrNotFound) || isStatus(err, http.StatusNotFound) {
		return nil
	}
	if err != nil {
		return s.fail("delete", digest, err)
	}
	err = s.repo.Manifests().Delete(ctx, desc)
	if err != nil && !errors.Is(err, errdef.ErrNotFound) && !isStatus(err, http.StatusNotFound) {
		return s.fail("delete", digest, err)
	}
	return nil
}

// Repository is the store's repository reference (HOST[:PORT]/REPO).
func (s *Store) Repository() registry.Reference { return s.repo.Reference }
