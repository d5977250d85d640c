package local_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/artifacts"
	"github.com/distributive-flow/dflow/artifacts/artifactstest"
	"github.com/distributive-flow/dflow/artifacts/local"
)

func TestConformance(t *testing.T) {
	artifactstest.Run(t, func(t *testing.T) artifacts.Store {
		s, err := local.Open(t.TempDir(), artifact.StoreOptions{Reserve: -1})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestGetChecksDigest: a blob that rotted on disk fails the read that
// reaches its end with ErrDigestMismatch.
func TestGetChecksDigest(t *testing.T) {
	ctx := context.Background()
	s, err := local.Open(t.TempDir(), artifact.StoreOptions{Reserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	b := artifactstest.NewBlob([]byte("good bytes"))
	if err := s.Put(ctx, b.Digest, bytes.NewReader(b.Data), -1); err != nil {
		t.Fatal(err)
	}
	path := s.Blobs().Path(b.Digest)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("rotten bits"), 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(ctx, b.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); !errors.Is(err, artifacts.ErrDigestMismatch) {
		t.Fatalf("reading a rotten blob: %v; want ErrDigestMismatch", err)
	}
}
