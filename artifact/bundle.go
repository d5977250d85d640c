package artifact

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// File is one entry to put in a bundle.
type File struct {
	Path   string      // slash path inside the bundle, relative, clean: "bin/hello"
	Source string      // file on disk to copy the content from
	Mode   os.FileMode // 0o755 for executables, 0o644 otherwise (only the permission bits are used, normalized to one of those two)
}

// Bundle format constants. Changing any of them changes every bundle's bytes (and digest).
const (
	bundleLevel  = zstd.SpeedDefault // zstd level 3
	bundleWindow = 8 << 20           // zstd window; also what decoders must accept
	dirMode      = 0o755
	execMode     = 0o755
	plainMode    = 0o644
)

// epoch is the mtime of every bundle entry.
var epoch = time.Unix(0, 0)

// normMode maps permission bits to the bundle's two file modes: executable if any x bit.
func normMode(m os.FileMode) os.FileMode {
	if m.Perm()&0o111 != 0 {
		return execMode
	}
	return plainMode
}

type bundleEntry struct {
	path string // clean slash path
	dir  bool
	file File
}

// planBundle validates files and returns the bundle's entries in order: files and their
// parent directories, sorted by path (so a directory precedes its content).
func planBundle(files []File) ([]bundleEntry, error) {
	if len(files) == 0 {
		return nil, errors.New("no files")
	}
	byPath := make(map[string]bool, len(files)) // path -> is a directory
	var entries []bundleEntry
	for _, f := range files {
		if err := checkBundlePath(f.Path); err != nil {
			return nil, err
		}
		if _, dup := byPath[f.Path]; dup {
			return nil, fmt.Errorf("path %q: duplicate", f.Path)
		}
		byPath[f.Path] = false
		entries = append(entries, bundleEntry{path: f.Path, file: f})
	}
	for _, f := range files {
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			isDir, seen := byPath[d]
			if seen && !isDir {
				return nil, fmt.Errorf("path %q: parent %q is a file", f.Path, d)
			}
			if seen {
				break // its parents are recorded too
			}
			byPath[d] = true
			entries = append(entries, bundleEntry{path: d, dir: true})
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].path < entries[j].path })
	return entries, nil
}

// checkBundlePath tells whether p may name a file in a bundle.
func checkBundlePath(p string) error {
	switch {
	case p == "" || p == ".":
		return fmt.Errorf("path %q: empty", p)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q: absolute", p)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("path %q: contains NUL", p)
	case path.Clean(p) != p:
		return fmt.Errorf("path %q: not clean (want %q)", p, path.Clean(p))
	case p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("path %q: outside the bundle", p)
	}
	return nil
}

// newBundleEncoder is the one zstd configuration bundles are written with.
func newBundleEncoder(w io.Writer) (*zstd.Encoder, error) {
	return zstd.NewWriter(w,
		zstd.WithEncoderLevel(bundleLevel),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(bundleWindow),
		zstd.WithEncoderCRC(true),
		zstd.WithZeroFrames(true),
	)
}

// WriteBundle writes a reproducible tar.zst of files to w: entries sorted by path, parent
// directory entries included, mtimes fixed (Unix 0), uid/gid 0, no user/group names, modes
// normalized, PAX headers avoided where possible; a fixed zstd level with one encoder goroutine
// so the same inputs always give the same bytes. Returns the hex sha256 and size of what it wrote.
// Duplicate or unsafe paths are an error.
//
// The bytes are stable for a given version of github.com/klauspost/compress; upgrading it may
// change them (the content, and so Entries, stays the same).
func WriteBundle(w io.Writer, files []File) (digest string, size int64, err error) {
	entries, err := planBundle(files)
	if err != nil {
		return "", 0, fmt.Errorf("write bundle: %w", err)
	}
	h := sha256.New()
	cw := &countWriter{}
	enc, err := newBundleEncoder(io.MultiWriter(w, h, cw))
	if err != nil {
		return "", 0, fmt.Errorf("write bundle: %w", err)
	}
	tw := tar.NewWriter(enc)
	buf := make([]byte, copyBufSize)
	for _, e := range entries {
		if e.dir {
			err = tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeDir,
				Name:     e.path + "/",
				Mode:     dirMode,
				ModTime:  epoch,
			})
		} else {
			err = writeBundleFile(tw, e.file, buf)
		}
		if err != nil {
			return "", 0, fmt.Errorf("write bundle: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", 0, fmt.Errorf("write bundle: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", 0, fmt.Errorf("write bundle: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

func writeBundleFile(tw *tar.Writer, f File, buf []byte) error {
	src, err := os.Open(f.Source)
	if err != nil {
		return fmt.Errorf("add %s: %w", f.Path, err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return fmt.Errorf("add %s: %w", f.Path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("add %s: source %s is not a regular file (%s)", f.Path, f.Source, fi.Mode().Type())
	}
	size := fi.Size()
	err = tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     f.Path,
		Mode:     int64(normMode(f.Mode)),
		Size:     size,
		ModTime:  epoch,
	})
	if err != nil {
		return fmt.Errorf("add %s: %w", f.Path, err)
	}
	n, err := io.CopyBuffer(tw, io.LimitReader(src, size), buf)
	if err != nil {
		return fmt.Errorf("add %s: %w", f.Path, err)
	}
	if n != size {
		return fmt.Errorf("add %s: source %s shrank while bundling (%d of %d bytes)", f.Path, f.Source, n, size)
	}
	return nil
}

// WriteBundleFile is WriteBundle to a file at path (atomically: temp, fsync, rename).
func WriteBundleFile(path string, files []File) (digest string, size int64, err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", 0, fmt.Errorf("write bundle %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	digest, size, err = WriteBundle(f, files)
	if err != nil {
		return "", 0, fmt.Errorf("write bundle %s: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return "", 0, fmt.Errorf("write bundle %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return "", 0, fmt.Errorf("write bundle %s: sync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return "", 0, fmt.Errorf("write bundle %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return "", 0, fmt.Errorf("write bundle %s: %w", path, err)
	}
	if err = syncDir(dir); err != nil {
		return "", 0, fmt.Errorf("write bundle %s: %w", path, err)
	}
	return digest, size, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
