package artifacts

import (
	"context"
	"io"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/artifacts/internal/verify"
)

// Info describes one stored bundle: its Digest, its Size in bytes and, where
// the store knows it, when it was stored (ModTime; zero where the store does
// not keep it, as an OCI registry does not).
type Info = artifact.Blob

// Errors every Store reports, wrapped with context (test with errors.Is).
// They are the directory store's own (package artifact), so an error from
// artifact.Store and one from any Store compare alike.
var (
	// ErrNotFound: the store holds no bundle with that digest.
	ErrNotFound = artifact.ErrNotFound
	// ErrDigestMismatch: content does not hash to the digest it was put or
	// fetched under.
	ErrDigestMismatch = artifact.ErrDigestMismatch
	// ErrInvalidDigest: the digest is not 64 lowercase hex digits.
	ErrInvalidDigest = verify.ErrInvalidDigest
)

// Store keeps bundles by digest: the lowercase hex sha256 of the bundle's
// bytes, without a "sha256:" prefix (as in package artifact). Every method
// refuses a digest that is not 64 lowercase hex digits with an error wrapping
// ErrInvalidDigest, before it touches anything. Implementations are safe for
// concurrent use, also by several processes on several machines sharing one
// store. Errors name the store's kind, the operation and the digest
// ("oci put sha256:…: …").
type Store interface {
	// Put stores the content r yields under digest. size is the content's
	// length in bytes, or -1 when it is not known.
	//
	// It checks the content against digest (and size) and stores nothing
	// when they differ: ErrDigestMismatch for content that hashes to
	// something else; an error for content longer or shorter than a size
	// >= 0; r's error when r fails (even at its very end); ctx's error when
	// ctx ends first. No Get, Stat or List sees a bundle before all of it
	// is stored.
	//
	// Putting a digest the store already holds is a success that does not
	// read r. Concurrent Puts of one digest all succeed (or fail on their
	// own content) and leave one copy.
	Put(ctx context.Context, digest string, r io.Reader, size int64) error

	// Get opens the bundle for reading; the caller closes it. The reader
	// checks the content against digest as it is read: content that does
	// not match (a store that rotted, a registry that lies) fails the read
	// that reaches its end with ErrDigestMismatch instead of io.EOF.
	// A digest the store does not hold: ErrNotFound.
	Get(ctx context.Context, digest string) (io.ReadCloser, error)

	// Stat describes the bundle without reading it. A digest the store does
	// not hold: ErrNotFound.
	Stat(ctx context.Context, digest string) (Info, error)

	// List returns the digests of every bundle the store holds, sorted in
	// ascending order, each once (empty, not an error, for an empty or a
	// not yet created store). Things in the store that are not bundles (temp
	// files of Puts in progress, other tags in a registry) are left out.
	List(ctx context.Context) ([]string, error)

	// Delete removes the bundle. Deleting a digest the store does not hold
	// is no error. After it returns, Stat and Get report ErrNotFound and
	// List leaves the digest out (a registry may keep the bytes until its
	// own garbage collection).
	Delete(ctx context.Context, digest string) error
}
