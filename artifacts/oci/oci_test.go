package oci_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/distributive-flow/dflow/artifacts"
	"github.com/distributive-flow/dflow/artifacts/artifactstest"
	"github.com/distributive-flow/dflow/artifacts/oci"
	"github.com/distributive-flow/dflow/testsuite"
)

// TestConformance runs the suite against a real registry (Debian's
// docker-registry), each case in a repository of its own.
func TestConformance(t *testing.T) {
	addr := testsuite.StartRegistry(t)
	var n atomic.Int64
	artifactstest.Run(t, func(t *testing.T) artifacts.Store {
		spec := fmt.Sprintf("oci+http://%s/dflow/case%d", addr, n.Add(1))
		s, err := artifacts.Open(context.Background(), spec, artifacts.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestLayout checks what a bundle looks like in the registry, read with
// oras-go directly: the tag, the manifest's artifactType and its one layer,
// and that the same bundle always makes the same manifest.
func TestLayout(t *testing.T) {
	addr := testsuite.StartRegistry(t)
	ctx := context.Background()
	s, err := oci.New(addr, "team/dflow", oci.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := remote.NewRepository(addr + "/team/dflow")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	manifest := func(digest string) (ocispec.Descriptor, ocispec.Manifest) {
		t.Helper()
		desc, rc, err := repo.FetchReference(ctx, oci.Tag(digest))
		if err != nil {
			t.Fatalf("fetch tag %s: %v", oci.Tag(digest), err)
		}
		defer rc.Close()
		var m ocispec.Manifest
		if err := json.NewDecoder(rc).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return desc, m
	}
	b := artifactstest.NewBlob([]byte("bundle bytes"))
	if err := s.Put(ctx, b.Digest, bytes.NewReader(b.Data), int64(len(b.Data))); err != nil {
		t.Fatal(err)
	}
	desc, m := manifest(b.Digest)
	if desc.MediaType != ocispec.MediaTypeImageManifest || m.ArtifactType != oci.ArtifactType ||
		m.Config.MediaType != ocispec.MediaTypeEmptyJSON || len(m.Layers) != 1 ||
		m.Layers[0].MediaType != oci.LayerMediaType || m.Layers[0].Digest.String() != "sha256:"+b.Digest ||
		m.Layers[0].Size != int64(len(b.Data)) {
		t.Fatalf("manifest %s of tag %s = %+v", desc.Digest, oci.Tag(b.Digest), m)
	}
	blob, err := content.FetchAll(ctx, repo, m.Layers[0])
	if err != nil || !bytes.Equal(blob, b.Data) {
		t.Fatalf("layer blob = %q, %v; want the bundle", blob, err)
	}
	if err := s.Delete(ctx, b.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Resolve(ctx, oci.Tag(b.Digest)); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("tag after Delete: %v; want not found", err)
	}
	if err := s.Put(ctx, b.Digest, bytes.NewReader(b.Data), -1); err != nil {
		t.Fatal(err)
	}
	if again, _ := manifest(b.Digest); again.Digest != desc.Digest {
		t.Fatalf("the same bundle made two manifests: %s, then %s", desc.Digest, again.Digest)
	}
}

// TestUnreachable: a registry that is not there fails every call at once,
// with an error that names the operation, the digest and the store.
func TestUnreachable(t *testing.T) {
	addr := testsuite.FreeAddr(t) // nothing listens there
	s, err := oci.New(addr, "dflow", oci.Options{PlainHTTP: true, HTTPClient: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}
	b := artifactstest.NewBlob([]byte("x"))
	err = s.Put(context.Background(), b.Digest, bytes.NewReader(b.Data), 1)
	if err == nil || !strings.Contains(err.Error(), "oci put sha256:"+b.Digest+" in "+addr+"/dflow") {
		t.Fatalf("Put to nothing: %v; want an error naming the digest and the store", err)
	}
	if _, err := s.List(context.Background()); err == nil || !strings.Contains(err.Error(), "oci list in "+addr+"/dflow") {
		t.Fatalf("List of nothing: %v", err)
	}
}

// TestDeleteDisabled: a registry that refuses deletes (distribution's
// default) makes Delete say how to allow them.
func TestDeleteDisabled(t *testing.T) {
	addr := testsuite.StartRegistryWith(t, testsuite.RegistryOptions{NoDelete: true})
	ctx := context.Background()
	s, err := oci.New(addr, "dflow", oci.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	b := artifactstest.NewBlob([]byte("kept"))
	if err := s.Put(ctx, b.Digest, bytes.NewReader(b.Data), int64(len(b.Data))); err != nil {
		t.Fatal(err)
	}
	err = s.Delete(ctx, b.Digest)
	if err == nil || !strings.Contains(err.Error(), "storage.delete.enabled: true") || !strings.Contains(err.Error(), b.Digest) {
		t.Fatalf("Delete on a registry without deletes: %v; want an error that says how to allow them", err)
	}
	if _, err := s.Stat(ctx, b.Digest); err != nil {
		t.Fatalf("Stat after a refused Delete: %v", err)
	}
}

// TestCredentials: with a registry that asks for basic authentication, a
// store without credentials is refused (the error says so), and one whose
// Docker configuration ($DOCKER_CONFIG/config.json, as `docker login`
// writes it) has them passes the suite.
func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("dflow:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testsuite.StartRegistryWith(t, testsuite.RegistryOptions{Htpasswd: htpasswd})
	ctx := context.Background()
	b := artifactstest.NewBlob([]byte("secret bundle"))

	t.Setenv("DOCKER_CONFIG", filepath.Join(dir, "empty"))
	anon, err := artifacts.Open(ctx, "oci+http://"+addr+"/dflow", artifacts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = anon.Put(ctx, b.Digest, bytes.NewReader(b.Data), int64(len(b.Data)))
	if err == nil || !strings.Contains(err.Error(), "not authorized; log in with `docker login "+addr+"`") {
		t.Fatalf("Put without credentials: %v; want one that says to log in", err)
	}

	docker := filepath.Join(dir, "docker")
	if err := os.MkdirAll(docker, 0o700); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, addr, base64.StdEncoding.EncodeToString([]byte("dflow:s3cret")))
	if err := os.WriteFile(filepath.Join(docker, "config.json"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", docker)
	var n atomic.Int64
	artifactstest.Run(t, func(t *testing.T) artifacts.Store {
		s, err := artifacts.Open(ctx, fmt.Sprintf("oci+http://%s/auth/case%d", addr, n.Add(1)), artifacts.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
