package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrDigestMismatch means content does not hash to the digest it was expected to have.
var ErrDigestMismatch = errors.New("artifact: content does not match its digest")

// ErrNotFound means the store holds no blob with that digest.
var ErrNotFound = errors.New("artifact: not found")

// ErrTooLarge means a blob is larger than the store's MaxSize.
var ErrTooLarge = errors.New("artifact: too large")

// ErrNoSpace means storing a blob would leave less free disk space than the
// store's reserve.
var ErrNoSpace = errors.New("artifact: not enough free disk space")

// Defaults of StoreOptions.
const (
	DefaultMaxSize = 4 << 30   // 4 GiB
	MinReserve     = 256 << 20 // the least free space a Put leaves, by default
)

// freeCheckEvery is how many bytes a Put writes between two looks at the
// free space.
var freeCheckEvery int64 = 64 << 20

// StoreOptions bound a Store. Zero values take the defaults.
type StoreOptions struct {
	// MaxSize is the largest blob the store accepts: default
	// DefaultMaxSize; negative: no cap.
	MaxSize int64
	// Reserve is the free space a Put must leave on the store's file
	// system: default the larger of MinReserve and 1% of the file system;
	// negative: none (a Put still never takes more than is free).
	Reserve int64
}

// tempPrefix starts the names of a store's temp files; List ignores them.
const tempPrefix = ".put-"

// copyBufSize is the buffer used to copy and hash blob content.
const copyBufSize = 256 << 10

// ValidDigest tells whether s is 64 lowercase hex digits.
func ValidDigest(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Store keeps blobs by digest in a directory: <dir>/<digest>. Safe for concurrent use by
// several goroutines and processes (writes go to a temp file in dir, then fsync and rename).
// Blobs are stored read-only (0444). A blob larger than the store's MaxSize, or one that
// would leave less free disk space than its reserve, is refused (ErrTooLarge, ErrNoSpace).
type Store struct {
	dir string
	o   StoreOptions
}

// Blob is one stored blob.
type Blob struct {
	Digest  string
	Size    int64
	ModTime time.Time
}

// OpenStore opens the store in dir, creating dir if needed, with the default bounds.
func OpenStore(dir string) (*Store, error) { return OpenStoreWith(dir, StoreOptions{}) }

// OpenStoreWith opens the store in dir, creating dir if needed, with the bounds o.
func OpenStoreWith(dir string, o StoreOptions) (*Store, error) {
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	if dir == "" {
		return nil, errors.New("open artifact store: empty directory name")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open artifact store %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open artifact store %s: %w", dir, err)
	}
	s := &Store{dir: abs, o: o}
	s.removeStaleTemps(time.Now().Add(-staleTempAge))
	return s, nil
}

// staleTempAge is how old a temp file must be before OpenStore takes it for the leftover
// of a crashed writer and removes it; younger ones may belong to a Put in progress.
const staleTempAge = 24 * time.Hour

func (s *Store) removeStaleTemps(before time.Time) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return // List and Put will report it
	}
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), tempPrefix) {
			continue
		}
		if fi, err := de.Info(); err == nil && fi.ModTime().Before(before) {
			_ = os.Remove(filepath.Join(s.dir, de.Name()))
		}
	}
}

// Dir is the store's directory (absolute).
func (s *Store) Dir() string { return s.dir }

// MaxSize is the largest blob the store accepts; negative: no cap.
func (s *Store) MaxSize() int64 { return s.o.MaxSize }

// disk is the free and total bytes of the store's file system, and the
// reserve a Put must leave free.
func (s *Store) disk() (free, total, reserve int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(s.dir, &st); err != nil {
		return 0, 0, 0, fmt.Errorf("free space of %s: %w", s.dir, err)
	}
	free, total = int64(st.Bavail)*int64(st.Bsize), int64(st.Blocks)*int64(st.Bsize)
	switch {
	case s.o.Reserve > 0:
		reserve = s.o.Reserve
	case s.o.Reserve == 0:
		reserve = max(MinReserve, total/100)
	}
	return free, total, reserve, nil
}

// Room checks, without writing anything, that a blob of size bytes may be stored now: it
// is ErrTooLarge above MaxSize, and ErrNoSpace when writing it would leave less free space
// than the reserve. size < 0 (not known yet) checks only that more than the reserve is free.
// The errors name the size, the free bytes and the directory.
func (s *Store) Room(size int64) error {
	if s.o.MaxSize >= 0 && size > s.o.MaxSize {
		return fmt.Errorf("%d bytes is more than the %d bytes a blob may have in %s: %w", size, s.o.MaxSize, s.dir, ErrTooLarge)
	}
	free, total, reserve, err := s.disk()
	if err != nil {
		return err
	}
	if size < 0 {
		if free <= reserve {
			return fmt.Errorf("%s has %d bytes free (of %d), not more than the %d kept in reserve: %w", s.dir, free, total, reserve, ErrNoSpace)
		}
		return nil
	}
	if free-size < reserve {
		return fmt.Errorf("%d bytes would leave %d of the %d bytes free (of %d) in %s, less than the %d kept in reserve: %w",
			size, free-size, free, total, s.dir, reserve, ErrNoSpace)
	}
	return nil
}

// Put stores what r yields and returns its digest and size. It hashes while writing; when
// want is not "" and the content hashes to something else, it returns ErrDigestMismatch
// (wrapped with both digests) and stores nothing. An existing blob is replaced atomically.
// It is PutSize of a blob of unknown size.
func (s *Store) Put(r io.Reader, want string) (digest string, n int64, err error) {
	return s.PutSize(r, want, -1)
}

// PutSize is Put of a blob declared to be size bytes long (-1: unknown). Before reading
// anything it checks Room(size); while writing it stops at MaxSize bytes (ErrTooLarge),
// and at regular intervals checks that the reserve stays free (ErrNoSpace); content
// longer or shorter than a declared size is refused. A blob is written to a temp file
// and becomes visible (Has, List, Open) only once all of it was read, r ended with
// io.EOF and its digest checked: a read error, even at the very end, stores nothing.
func (s *Store) PutSize(r io.Reader, want string, size int64) (digest string, n int64, err error) {
	if want != "" && !ValidDigest(want) {
		return "", 0, fmt.Errorf("put blob: invalid digest %q", want)
	}
	name := want
	if name == "" {
		name = "(new)"
	}
	if err := s.Room(size); err != nil {
		return "", 0, fmt.Errorf("put blob %s: %w", name, err)
	}
	limit := s.o.MaxSize
	if size >= 0 && (limit < 0 || size < limit) {
		limit = size
	}
	f, err := os.CreateTemp(s.dir, tempPrefix+"*")
	if err != nil {
		return "", 0, fmt.Errorf("put blob: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	h := sha256.New()
	w := &roomWriter{s: s, w: io.MultiWriter(f, h)}
	src := r
	if limit >= 0 {
		src = io.LimitReader(r, limit+1)
	}
	n, err = io.CopyBuffer(w, src, make([]byte, copyBufSize))
	switch {
	case errors.Is(err, syscall.ENOSPC) && !errors.Is(err, ErrNoSpace):
		return "", 0, fmt.Errorf("put blob %s: %s is full after %d bytes: %w: %w", name, s.dir, n, ErrNoSpace, err)
	case err != nil:
		return "", 0, fmt.Errorf("put blob %s: copy: %w", name, err)
	case size >= 0 && n > size:
		return "", 0, fmt.Errorf("put blob %s: content is more than the %d bytes declared", name, size)
	case n > s.o.MaxSize && s.o.MaxSize >= 0:
		return "", 0, fmt.Errorf("put blob %s: more than the %d bytes a blob may have in %s: %w", name, s.o.MaxSize, s.dir, ErrTooLarge)
	case size >= 0 && n < size:
		return "", 0, fmt.Errorf("put blob %s: content is %d bytes, %d declared", name, n, size)
	}
	digest = hex.EncodeToString(h.Sum(nil))
	if want != "" && digest != want {
		return "", 0, fmt.Errorf("put blob %s: %w: got %s (%d bytes)", want, ErrDigestMismatch, digest, n)
	}
	if err = f.Chmod(0o444); err != nil {
		return "", 0, fmt.Errorf("put blob %s: %w", digest, err)
	}
	if err = f.Sync(); err != nil {
		return "", 0, fmt.Errorf("put blob %s: sync: %w", digest, err)
	}
	if err = f.Close(); err != nil {
		return "", 0, fmt.Errorf("put blob %s: %w", digest, err)
	}
	if err = os.Rename(tmp, filepath.Join(s.dir, digest)); err != nil {
		return "", 0, fmt.Errorf("put blob %s: %w", digest, err)
	}
	if err = syncDir(s.dir); err != nil {
		return "", 0, fmt.Errorf("put blob %s: %w", digest, err)
	}
	return digest, n, nil
}

// roomWriter writes to w and, every freeCheckEvery bytes, checks that the store's
// reserve is still free.
type roomWriter struct {
	s       *Store
	w       io.Writer
	n, next int64
}

func (rw *roomWriter) Write(p []byte) (int, error) {
	n, err := rw.w.Write(p)
	rw.n += int64(n)
	if err == nil && rw.n >= rw.next {
		rw.next = rw.n + freeCheckEvery
		free, total, reserve, derr := rw.s.disk()
		if derr == nil && free < reserve {
			err = fmt.Errorf("after %d bytes %s has %d bytes free (of %d), less than the %d kept in reserve: %w", rw.n, rw.s.dir, free, total, reserve, ErrNoSpace)
		}
	}
	return n, err
}

// PutFile is PutSize with the content of the file at path; the file is copied, not moved.
func (s *Store) PutFile(path, want string) (digest string, n int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("put file: %w", err)
	}
	defer f.Close()
	size := int64(-1)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	digest, n, err = s.PutSize(f, want, size)
	if err != nil {
		return "", 0, fmt.Errorf("put file %s: %w", path, err)
	}
	return digest, n, nil
}

// Has tells whether the store holds a blob with that digest.
func (s *Store) Has(digest string) bool {
	if !ValidDigest(digest) {
		return false
	}
	fi, err := os.Lstat(filepath.Join(s.dir, digest))
	return err == nil && fi.Mode().IsRegular()
}

// Path is where the blob with that digest is (or would be) kept; "" for an invalid digest,
// so that a hostile digest can never name a path outside the store.
func (s *Store) Path(digest string) string {
	if !ValidDigest(digest) {
		return ""
	}
	return filepath.Join(s.dir, digest)
}

// Open opens the blob for reading and returns its size; ErrNotFound when absent (or when
// digest is not a valid digest).
func (s *Store) Open(digest string) (*os.File, int64, error) {
	if !ValidDigest(digest) {
		return nil, 0, fmt.Errorf("open blob %q: invalid digest: %w", digest, ErrNotFound)
	}
	f, err := os.Open(filepath.Join(s.dir, digest))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("open blob %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("open blob %s: %w", digest, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("open blob %s: %w", digest, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("open blob %s: not a regular file", digest)
	}
	return f, fi.Size(), nil
}

// Verify re-hashes the blob: ErrDigestMismatch if it rotted, ErrNotFound if absent.
func (s *Store) Verify(digest string) error {
	f, _, err := s.Open(digest)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	got, _, err := hashReader(f)
	if err != nil {
		return fmt.Errorf("verify blob %s: %w", digest, err)
	}
	if got != digest {
		return fmt.Errorf("verify blob %s: %w: got %s", digest, ErrDigestMismatch, got)
	}
	return nil
}

// Remove deletes the blob; an absent blob is no error.
func (s *Store) Remove(digest string) error {
	if !ValidDigest(digest) {
		return fmt.Errorf("remove blob %q: invalid digest", digest)
	}
	err := os.Remove(filepath.Join(s.dir, digest))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove blob %s: %w", digest, err)
	}
	return nil
}

// List returns the stored blobs sorted by ModTime, then digest. Temp files of writes in
// progress and anything whose name is not a digest are left out.
func (s *Store) List() ([]Blob, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list blobs in %s: %w", s.dir, err)
	}
	blobs := make([]Blob, 0, len(des))
	for _, de := range des {
		name := de.Name()
		if !ValidDigest(name) || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list blobs in %s: %w", s.dir, err)
		}
		blobs = append(blobs, Blob{Digest: name, Size: fi.Size(), ModTime: fi.ModTime()})
	}
	sort.Slice(blobs, func(i, j int) bool {
		if !blobs[i].ModTime.Equal(blobs[j].ModTime) {
			return blobs[i].ModTime.Before(blobs[j].ModTime)
		}
		return blobs[i].Digest < blobs[j].Digest
	})
	return blobs, nil
}

// FileSHA256 is the hex sha256 and size of the file at path.
func FileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("hash file: %w", err)
	}
	defer f.Close()
	d, n, err := hashReader(f)
	if err != nil {
		return "", 0, fmt.Errorf("hash file %s: %w", path, err)
	}
	return d, n, nil
}

func hashReader(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, make([]byte, copyBufSize))
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// syncDir fsyncs a directory so a rename into it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
