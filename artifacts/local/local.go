package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/artifacts/internal/verify"
)

// Store is an artifacts.Store in a directory (<dir>/<digest>, as
// artifact.Store keeps it).
type Store struct {
	s *artifact.Store
}

// Open opens the store in dir, creating dir if needed, with the bounds o
// (zero: artifact's defaults).
func Open(dir string, o artifact.StoreOptions) (*Store, error) {
	s, err := artifact.OpenStoreWith(dir, o)
	if err != nil {
		return nil, fmt.Errorf("local artifact store: %w", err)
	}
	return &Store{s: s}, nil
}

// New is the store over an artifact.Store that is open already.
func New(s *artifact.Store) *Store { return &Store{s: s} }

// Dir is the store's directory (absolute).
func (s *Store) Dir() string { return s.s.Dir() }

// Blobs is the artifact.Store underneath, for what only a directory can do
// (Path, Verify, PutFile).
func (s *Store) Blobs() *artifact.Store { return s.s }

func (s *Store) String() string { return s.s.Dir() }

// Put stores r under digest unless the store holds it already (then r is not
// read); artifact.Store checks the digest, the size, MaxSize and the disk
// reserve (artifact.ErrTooLarge, artifact.ErrNoSpace) and makes the blob
// visible only once it is complete.
func (s *Store) Put(ctx context.Context, digest string, r io.Reader, size int64) error {
	if err := verify.Digest(digest); err != nil {
		return fmt.Errorf("local put: %w", err)
	}
	if s.s.Has(digest) {
		return nil
	}
	if size < -1 {
		return fmt.Errorf("local put sha256:%s: negative size %d", digest, size)
	}
	if _, _, err := s.s.PutSize(verify.Context(ctx, r), digest, size); err != nil {
		return fmt.Errorf("local put sha256:%s in %s: %w", digest, s.s.Dir(), err)
	}
	return nil
}

// Get opens the blob; the reader checks its digest as it is read.
func (s *Store) Get(ctx context.Context, digest string) (io.ReadCloser, error) {
	if err := verify.Digest(digest); err != nil {
		return nil, fmt.Errorf("local get: %w", err)
	}
	f, size, err := s.s.Open(digest)
	if err != nil {
		return nil, fmt.Errorf("local get sha256:%s in %s: %w", digest, s.s.Dir(), err)
	}
	return verify.ReadCloser(f, digest, size), nil
}

// Stat describes the blob (its file's size and modification time).
func (s *Store) Stat(ctx context.Context, digest string) (artifact.Blob, error) {
	if err := verify.Digest(digest); err != nil {
		return artifact.Blob{}, fmt.Errorf("local stat: %w", err)
	}
	fi, err := os.Lstat(s.s.Path(digest))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return artifact.Blob{}, fmt.Errorf("local stat sha256:%s in %s: %w", digest, s.s.Dir(), artifact.ErrNotFound)
	case err != nil:
		return artifact.Blob{}, fmt.Errorf("local stat sha256:%s: %w", digest, err)
	case !fi.Mode().IsRegular():
		return artifact.Blob{}, fmt.Errorf("local stat sha256:%s: %s is not a regular file", digest, s.s.Path(digest))
	}
	return artifact.Blob{Digest: digest, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List returns the stored digests in ascending order.
func (s *Store) List(ctx context.Context) ([]string, error) {
	blobs, err := s.s.List()
	if err != nil {
		return nil, fmt.Errorf("local list: %w", err)
	}
	out := make([]string, len(blobs))
	for i, b := range blobs {
		out[i] = b.Digest
	}
	sort.Strings(out)
	return out, nil
}

// Delete removes the blob; a missing one is no error.
func (s *Store) Delete(ctx context.Context, digest string) error {
	if err := verify.Digest(digest); err != nil {
		return fmt.Errorf("local delete: %w", err)
	}
	if err := s.s.Remove(digest); err != nil {
		return fmt.Errorf("local delete in %s: %w", s.s.Dir(), err)
	}
	return nil
}
