package artifactstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/artifacts"
)

// BigSize is the size of the blob of the large round trip.
const BigSize = 12<<20 + 12345

// Blob is content and its digest.
type Blob struct {
	Data   []byte
	Digest string
}

// NewBlob is the blob of data.
func NewBlob(data []byte) Blob {
	h := sha256.Sum256(data)
	return Blob{Data: data, Digest: hex.EncodeToString(h[:])}
}

// RandomBlob is n pseudo-random bytes drawn from seed.
func RandomBlob(seed uint64, n int) Blob {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return NewBlob(b)
}

// Run checks the contracts of artifacts.Store on stores newStore makes:
// each case gets its own, empty store.
func Run(t *testing.T, newStore func(t *testing.T) artifacts.Store) {
	t.Run("Missing", func(t *testing.T) { testMissing(t, newStore(t)) })
	t.Run("Put", func(t *testing.T) { testPut(t, newStore) })
	t.Run("PutExisting", func(t *testing.T) { testPutExisting(t, newStore(t)) })
	t.Run("InvalidDigest", func(t *testing.T) { testInvalidDigest(t, newStore(t)) })
	t.Run("ListAndDelete", func(t *testing.T) { testListAndDelete(t, newStore(t)) })
	t.Run("ConcurrentPuts", func(t *testing.T) { testConcurrentPuts(t, newStore(t)) })
	t.Run("Big", func(t *testing.T) { testBig(t, newStore(t)) })
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// readAll reads the store's bundle whole.
func readAll(ctx context.Context, s artifacts.Store, digest string) ([]byte, error) {
	rc, err := s.Get(ctx, digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// mustHold checks that s holds b: Stat, Get and List agree.
func mustHold(t *testing.T, ctx context.Context, s artifacts.Store, b Blob) {
	t.Helper()
	info, err := s.Stat(ctx, b.Digest)
	if err != nil {
		t.Fatalf("Stat(%s) after Put: %v", b.Digest, err)
	}
	if info.Digest != b.Digest || info.Size != int64(len(b.Data)) {
		t.Fatalf("Stat(%s) = {%s %d}, want {%s %d}", b.Digest, info.Digest, info.Size, b.Digest, len(b.Data))
	}
	got, err := readAll(ctx, s, b.Digest)
	if err != nil {
		t.Fatalf("Get(%s): %v", b.Digest, err)
	}
	if !bytes.Equal(got, b.Data) {
		t.Fatalf("Get(%s) gave %d bytes that differ from the %d put", b.Digest, len(got), len(b.Data))
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if !slices.Contains(list, b.Digest) {
		t.Fatalf("List = %v, lacks %s", list, b.Digest)
	}
}

// mustLack checks that s holds nothing under digest, everywhere it looks.
func mustLack(t *testing.T, ctx context.Context, s artifacts.Store, digest string) {
	t.Helper()
	if info, err := s.Stat(ctx, digest); !errors.Is(err, artifacts.ErrNotFound) {
		t.Fatalf("Stat(%s) = %+v, %v; want ErrNotFound", digest, info, err)
	}
	if rc, err := s.Get(ctx, digest); !errors.Is(err, artifacts.ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("Get(%s) = %v; want ErrNotFound", digest, err)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if slices.Contains(list, digest) {
		t.Fatalf("List = %v holds %s, which must not be stored", list, digest)
	}
}

func testMissing(t *testing.T, s artifacts.Store) {
	ctx := ctxOf(t)
	missing := NewBlob([]byte("never put")).Digest
	mustLack(t, ctx, s, missing)
	list, err := s.List(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("List of an empty store = %v, %v; want [], nil", list, err)
	}
	if err := s.Delete(ctx, missing); err != nil {
		t.Fatalf("Delete of a missing digest: %v; want nil", err)
	}
}

// failingReader yields data, then fails with err instead of io.EOF.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

var errBroken = errors.New("reader broke")

func testPut(t *testing.T, newStore func(t *testing.T) artifacts.Store) {
	small := NewBlob([]byte("a small bundle\n"))
	other := NewBlob([]byte("another bundle, of another length\n"))
	empty := NewBlob(nil)
	mid := RandomBlob(7, 300<<10)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name   string
		ctx    context.Context // nil: a live one
		digest string
		r      func() io.Reader
		size   int64
		// want: nil for success; else an error Put's must match
		// (errors.Is), or errAny for any error.
		want  error
		check Blob // what must be stored afterwards (on success) or absent (on failure)
	}{
		{name: "small", digest: small.Digest, r: reader(small.Data), size: int64(len(small.Data)), check: small},
		{name: "empty", digest: empty.Digest, r: reader(nil), size: 0, check: empty},
		{name: "unknown size", digest: mid.Digest, r: reader(mid.Data), size: -1, check: mid},
		{name: "wrong content, same size", digest: small.Digest, r: reader(bytes.ToUpper(small.Data)), size: int64(len(small.Data)), want: artifacts.ErrDigestMismatch, check: small},
		{name: "wrong content, unknown size", digest: small.Digest, r: reader(other.Data), size: -1, want: artifacts.ErrDigestMismatch, check: small},
		{name: "wrong content of the declared size", digest: small.Digest, r: reader(other.Data), size: int64(len(other.Data)), want: artifacts.ErrDigestMismatch, check: small},
		{name: "content shorter than declared", digest: small.Digest, r: reader(small.Data), size: int64(len(small.Data)) + 1, want: errAny, check: small},
		{name: "content longer than declared", digest: small.Digest, r: reader(small.Data), size: int64(len(small.Data)) - 1, want: errAny, check: small},
		{name: "reader fails at its end", digest: small.Digest, r: func() io.Reader { return &failingReader{small.Data, errBroken} }, size: int64(len(small.Data)), want: errBroken, check: small},
		{name: "reader fails at its end, unknown size", digest: mid.Digest, r: func() io.Reader { return &failingReader{mid.Data, errBroken} }, size: -1, want: errBroken, check: mid},
		{name: "context cancelled", ctx: cancelled, digest: small.Digest, r: reader(small.Data), size: int64(len(small.Data)), want: context.Canceled, check: small},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			ctx := ctxOf(t)
			putCtx := ctx
			if c.ctx != nil {
				putCtx = c.ctx
			}
			err := s.Put(putCtx, c.digest, c.r(), c.size)
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("Put: %v", err)
			case c.want == nil:
				mustHold(t, ctx, s, c.check)
				return
			case err == nil:
				t.Fatalf("Put succeeded; want an error (%v)", c.want)
			case c.want != errAny && !errors.Is(err, c.want):
				t.Fatalf("Put: %v; want an error that is %v", err, c.want)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(c.digest)) {
				t.Errorf("Put's error %q does not name the digest %s", err, c.digest)
			}
			mustLack(t, ctx, s, c.check.Digest)
			// The failure left nothing that stops a good Put.
			if err := s.Put(ctx, c.check.Digest, bytes.NewReader(c.check.Data), int64(len(c.check.Data))); err != nil {
				t.Fatalf("Put after the failed one: %v", err)
			}
			mustHold(t, ctx, s, c.check)
		})
	}
}

// errAny stands for "any error" in testPut's table.
var errAny = errors.New("any error")

func reader(b []byte) func() io.Reader {
	return func() io.Reader { return bytes.NewReader(b) }
}

func testPutExisting(t *testing.T, s artifacts.Store) {
	ctx := ctxOf(t)
	b := NewBlob([]byte("put twice"))
	if err := s.Put(ctx, b.Digest, bytes.NewReader(b.Data), int64(len(b.Data))); err != nil {
		t.Fatalf("Put: %v", err)
	}
	for _, c := range []struct {
		name string
		r    io.Reader
		size int64
	}{
		{"same content", bytes.NewReader(b.Data), int64(len(b.Data))},
		{"a reader that fails", &failingReader{nil, errBroken}, int64(len(b.Data))},
		{"other content", bytes.NewReader([]byte("something else")), -1},
	} {
		if err := s.Put(ctx, b.Digest, c.r, c.size); err != nil {
			t.Fatalf("Put of an existing digest (%s): %v; want a no-op success", c.name, err)
		}
		mustHold(t, ctx, s, b)
	}
	list, err := s.List(ctx)
	if err != nil || !slices.Equal(list, []string{b.Digest}) {
		t.Fatalf("List = %v, %v; want [%s]", list, err, b.Digest)
	}
}

func testInvalidDigest(t *testing.T, s artifacts.Store) {
	ctx := ctxOf(t)
	good := NewBlob([]byte("x"))
	for _, d := range []string{
		"",
		"sha256:" + good.Digest,
		"../../../etc/passwd",
		good.Digest[:63],
		good.Digest + "0",
		"ABCDEF" + good.Digest[6:],
		good.Digest[:63] + "g",
		good.Digest[:60] + "/../",
	} {
		name := fmt.Sprintf("%q", d)
		if err := s.Put(ctx, d, bytes.NewReader(good.Data), 1); !errors.Is(err, artifacts.ErrInvalidDigest) {
			t.Errorf("Put(%s) = %v; want ErrInvalidDigest", name, err)
		}
		if rc, err := s.Get(ctx, d); !errors.Is(err, artifacts.ErrInvalidDigest) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("Get(%s) = %v; want ErrInvalidDigest", name, err)
		}
		if _, err := s.Stat(ctx, d); !errors.Is(err, artifacts.ErrInvalidDigest) {
			t.Errorf("Stat(%s) = %v; want ErrInvalidDigest", name, err)
		}
		if err := s.Delete(ctx, d); !errors.Is(err, artifacts.ErrInvalidDigest) {
			t.Errorf("Delete(%s) = %v; want ErrInvalidDigest", name, err)
		}
	}
	if list, err := s.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("List after invalid Puts = %v, %v; want []", list, err)
	}
}

func testListAndDelete(t *testing.T, s artifacts.Store) {
	ctx := ctxOf(t)
	var blobs []Blob
	for i := range 5 {
		blobs = append(blobs, RandomBlob(uint64(100+i), 1000+i))
	}
	want := []string{}
	for _, b := range blobs {
		if err := s.Put(ctx, b.Digest, bytes.NewReader(b.Data), int64(len(b.Data))); err != nil {
			t.Fatalf("Put: %v", err)
		}
		want = append(want, b.Digest)
	}
	slices.Sort(want)
	list, err := s.List(ctx)
	if err != nil || !slices.Equal(list, want) {
		t.Fatalf("List = %v, %v; want %v (ascending)", list, err, want)
	}
	gone := blobs[2]
	if err := s.Delete(ctx, gone.Digest); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	mustLack(t, ctx, s, gone.Digest)
	if err := s.Delete(ctx, gone.Digest); err != nil {
		t.Fatalf("Delete again: %v; want nil", err)
	}
	want = slices.DeleteFunc(want, func(d string) bool { return d == gone.Digest })
	if list, err := s.List(ctx); err != nil || !slices.Equal(list, want) {
		t.Fatalf("List after Delete = %v, %v; want %v", list, err, want)
	}
	for _, b := range blobs {
		if b.Digest != gone.Digest {
			mustHold(t, ctx, s, b)
		}
	}
	// Put again after Delete: back, with its content.
	if err := s.Put(ctx, gone.Digest, bytes.NewReader(gone.Data), int64(len(gone.Data))); err != nil {
		t.Fatalf("Put after Delete: %v", err)
	}
	mustHold(t, ctx, s, gone)
}

func testConcurrentPuts(t *testing.T, s artifacts.Store) {
	ctx := ctxOf(t)
	b := RandomBlob(42, 2<<20)
	bad := bytes.Clone(b.Data)
	bad[len(bad)/2] ^= 1
	const n = 6
	errs := make([]error, 2*n)
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := b.Data
			if i%2 == 1 {
				data = bad // every other one sends corrupt content
			}
			errs[i] = s.Put(ctx, b.Digest, bytes.NewReader(data), int64(len(data)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 0 && err != nil {
			t.Errorf("concurrent Put %d of the right content: %v", i, err)
		}
		if i%2 == 1 && err != nil && !errors.Is(err, artifacts.ErrDigestMismatch) {
			t.Errorf("concurrent Put %d of corrupt content: %v; want success (it was there already) or ErrDigestMismatch", i, err)
		}
	}
	mustHold(t, ctx, s, b)
	if list, err := s.List(ctx); err != nil || !slices.Equal(list, []string{b.Digest}) {
		t.Fatalf("List = %v, %v; want one %s", list, err, b.Digest)
	}
}

func testBig(t *testing.T, s artifacts.Store) {
	ctx := ctxOf(t)
	b := RandomBlob(1, BigSize)
	start := time.Now()
	if err := s.Put(ctx, b.Digest, bytes.NewReader(b.Data), int64(len(b.Data))); err != nil {
		t.Fatalf("Put of %d bytes: %v", len(b.Data), err)
	}
	put := time.Since(start)
	start = time.Now()
	rc, err := s.Get(ctx, b.Digest)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil {
		t.Fatalf("read the bundle: %v", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != b.Digest || n != int64(len(b.Data)) {
		t.Fatalf("Get gave %d bytes, sha256 %s; want %d, %s", n, got, len(b.Data), b.Digest)
	}
	t.Logf("%d MiB: put %s, get %s", len(b.Data)>>20, put.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if info, err := s.Stat(ctx, b.Digest); err != nil || info.Size != int64(len(b.Data)) {
		t.Fatalf("Stat = %+v, %v; want size %d", info, err, len(b.Data))
	}
}
