package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/distributive-flow/dflow/artifact"
)

// ErrInvalidDigest means a digest is not 64 lowercase hex digits (the sha256
// of a bundle, without a "sha256:" prefix).
var ErrInvalidDigest = errors.New("invalid digest")

// Digest checks that d is a valid digest; the error wraps ErrInvalidDigest
// and quotes d.
func Digest(d string) error {
	if artifact.ValidDigest(d) {
		return nil
	}
	return fmt.Errorf("%w %q: want 64 lowercase hex digits (the sha256 of the bundle, without \"sha256:\")", ErrInvalidDigest, d)
}

// Reader reads r and checks, when r ends, that what it yielded hashes to
// digest and, when size >= 0, is size bytes long. A mismatch is reported
// instead of io.EOF (wrapping artifact.ErrDigestMismatch for a wrong hash),
// so whoever copies from it to a destination fails before the destination
// takes the content as complete. Content longer than size fails as soon as
// it goes past it.
func Reader(r io.Reader, digest string, size int64) io.Reader {
	return &reader{r: r, h: sha256.New(), digest: digest, size: size}
}

type reader struct {
	r      io.Reader
	h      hash.Hash
	digest string
	size   int64
	n      int64
	err    error // sticky: once failed, always failed
}

func (v *reader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		v.err = fmt.Errorf("content is more than the %d bytes declared", v.size)
		return 0, v.err
	}
	if err == io.EOF {
		got := hex.EncodeToString(v.h.Sum(nil))
		switch {
		case v.size >= 0 && v.n != v.size:
			v.err = fmt.Errorf("content is %d bytes, %d declared", v.n, v.size)
		case got != v.digest:
			v.err = fmt.Errorf("%w: got sha256:%s (%d bytes)", artifact.ErrDigestMismatch, got, v.n)
		default:
			v.err = io.EOF
		}
		return n, v.err
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

// ReadCloser is Reader over rc, closing rc on Close.
func ReadCloser(rc io.ReadCloser, digest string, size int64) io.ReadCloser {
	return readCloser{Reader: Reader(rc, digest, size), Closer: rc}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// Context reads r until ctx is done, then fails with ctx's error.
func Context(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
