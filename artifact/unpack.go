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

	"github.com/klauspost/compress/zstd"
)

// ErrBadBundle means a bundle's stream is broken: not zstd, truncated, a corrupt tar, no
// entries, or data after the end of the archive. Errors wrapping it come from Unpack and
// Entries; refused entries are reported as *UnsafeEntryError instead.
var ErrBadBundle = errors.New("artifact: malformed bundle")

// UnsafeEntryError is why Unpack refused an entry.
type UnsafeEntryError struct {
	Name   string // the entry's name as it appears in the bundle
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("artifact: refuse entry %q: %s", e.Name, e.Reason)
}

// UnpackOptions bound what Unpack accepts; zero values take defaults.
type UnpackOptions struct {
	MaxBytes int64 // total uncompressed bytes; default 4 GiB
	MaxFiles int   // default 100000
}

// Defaults of UnpackOptions.
const (
	DefaultMaxBytes = 4 << 30
	DefaultMaxFiles = 100000
)

const (
	maxLinkHops     = 40      // like Linux's MAXSYMLINKS
	maxTrailing     = 1 << 20 // zero padding accepted after the tar end marker
	maxDecodeWindow = 64 << 20
)

func (o UnpackOptions) withDefaults() UnpackOptions {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	return o
}

// Unpack extracts a bundle (tar.zst) read from r into dir, which must not exist yet or be
// empty. It refuses (UnsafeEntryError, and removes what it wrote): absolute paths, ".."
// components or any path that cleans to outside dir, symlinks whose target is absolute or
// escapes dir (resolved relative to the link's own directory, following links inside the
// bundle), all hard links, device files, fifos, sockets, setuid/setgid/sticky bits,
// duplicate entries, entries through a symlink, entries over the limits, and anything that is
// not a regular file, directory or safe symlink. Extraction goes into a temp dir next to dir
// and is renamed into place only when complete, so a refused or broken bundle leaves nothing
// behind.
//
// Modes are normalized as WriteBundle does: directories 0755, files 0755 if the entry has any
// execute bit and 0644 otherwise. Files and directories are fsynced before the rename. A
// broken stream (see ErrBadBundle) is refused the same way, checksums included.
func Unpack(r io.Reader, dir string, o UnpackOptions) (err error) {
	o = o.withDefaults()
	if dir == "" {
		return errors.New("unpack: empty directory name")
	}
	dir = filepath.Clean(dir)
	if err := checkEmptyOrAbsent(dir); err != nil {
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".unpack-*")
	if err != nil {
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := extract(r, tmp, o); err != nil {
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	if err := os.Chmod(tmp, dirMode); err != nil {
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	if err := syncDir(tmp); err != nil {
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	// os.Rename refuses to replace a directory, even an empty one (rename(2) would not):
	// remove it first if it is still empty; rmdir fails if it no longer is.
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// dir appeared again since: someone else unpacked there first.
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	return nil
}

func checkEmptyOrAbsent(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("exists and is not a directory (%s)", fi.Mode().Type())
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return errors.New("directory is not empty")
	}
	if err != nil && err != io.EOF {
		return err
	}
	return nil
}

// extract writes the bundle's entries under tmp, through an os.Root so that nothing can
// land outside it even if a check below were wrong.
func extract(r io.Reader, tmp string, o UnpackOptions) error {
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return err
	}
	defer root.Close()
	var dirs []string // created directories, to fsync
	buf := make([]byte, copyBufSize)
	err = readBundle(r, o, func(e *checkedEntry, tr *tar.Reader) error {
		for _, d := range e.newParents {
			if err := mkdir(root, d); err != nil {
				return err
			}
			dirs = append(dirs, d)
		}
		switch e.kind {
		case kindDir:
			if e.existed { // created as a parent before
				return nil
			}
			if err := mkdir(root, e.name); err != nil {
				return err
			}
			dirs = append(dirs, e.name)
		case kindFile:
			return writeFile(root, e, tr, buf)
		case kindLink:
			if err := root.Symlink(e.target, e.name); err != nil {
				return fmt.Errorf("symlink %s: %w", e.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := syncDir(filepath.Join(tmp, filepath.FromSlash(d))); err != nil {
			return err
		}
	}
	return nil
}

func mkdir(root *os.Root, name string) error {
	if err := root.Mkdir(name, dirMode); err != nil {
		return fmt.Errorf("mkdir %s: %w", name, err)
	}
	if err := root.Chmod(name, dirMode); err != nil { // umask
		return fmt.Errorf("chmod %s: %w", name, err)
	}
	return nil
}

func writeFile(root *os.Root, e *checkedEntry, tr *tar.Reader, buf []byte) error {
	f, err := root.OpenFile(e.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, plainMode)
	if err != nil {
		return fmt.Errorf("create %s: %w", e.name, err)
	}
	defer f.Close()
	n, err := io.CopyBuffer(f, tr, buf)
	if err != nil {
		return readErr(fmt.Errorf("write %s: %w", e.name, err))
	}
	if n != e.size {
		return fmt.Errorf("%w: %s: %d of %d bytes", ErrBadBundle, e.name, n, e.size)
	}
	if err := f.Chmod(e.mode); err != nil {
		return fmt.Errorf("chmod %s: %w", e.name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", e.name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", e.name, err)
	}
	return nil
}

// readErr marks an error from reading the bundle stream as ErrBadBundle, leaving errors
// from the destination file system (which are *os.PathError) alone.
func readErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) || errors.Is(err, ErrBadBundle) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrBadBundle, err)
}

// Entry is one entry of a bundle as Entries reports it.
type Entry struct {
	Path   string      // clean slash path, directories without a trailing slash
	Mode   os.FileMode // os.ModeDir or os.ModeSymlink for those, plus normalized permission bits
	Size   int64       // content size of regular files
	SHA256 string      // hex sha256 of regular files' content, "" otherwise
	Target string      // symlink target, "" otherwise
}

// Entries lists a bundle's entries (path, mode, size, sha256 of regular files) without
// extracting, for `dflow build` output and checks. It applies the same checks as Unpack with
// default limits, so a bundle it accepts is one Unpack accepts. Entries are in bundle order.
func Entries(r io.Reader) ([]Entry, error) {
	var out []Entry
	h := sha256.New()
	buf := make([]byte, copyBufSize)
	err := readBundle(r, UnpackOptions{}.withDefaults(), func(e *checkedEntry, tr *tar.Reader) error {
		switch e.kind {
		case kindDir:
			out = append(out, Entry{Path: e.name, Mode: os.ModeDir | dirMode})
		case kindLink:
			out = append(out, Entry{Path: e.name, Mode: os.ModeSymlink | 0o777, Target: e.target})
		case kindFile:
			h.Reset()
			n, err := io.CopyBuffer(h, tr, buf)
			if err != nil {
				return readErr(fmt.Errorf("read %s: %w", e.name, err))
			}
			if n != e.size {
				return fmt.Errorf("%w: %s: %d of %d bytes", ErrBadBundle, e.name, n, e.size)
			}
			out = append(out, Entry{Path: e.name, Mode: e.mode, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list bundle entries: %w", err)
	}
	return out, nil
}

// readBundle decodes a bundle, checks every entry and calls fn for each accepted one, then
// checks what can only be checked at the end (symlink chains, trailing data).
func readBundle(r io.Reader, o UnpackOptions, fn func(*checkedEntry, *tar.Reader) error) error {
	zr, err := zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxDecodeWindow),
	)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadBundle, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	c := newChecker(o)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadBundle, err)
		}
		e, err := c.add(h)
		if err != nil {
			return err
		}
		if e == nil { // the root directory itself
			continue
		}
		if err := fn(e, tr); err != nil {
			return err
		}
	}
	if err := drainTrailing(zr); err != nil {
		return err
	}
	return c.finish()
}

// drainTrailing reads what follows the tar end marker to the end of the zstd stream, so that
// a truncated or corrupt stream is noticed; only zero padding is allowed there.
func drainTrailing(r io.Reader) error {
	buf := make([]byte, 32<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		total += int64(n)
		for _, b := range buf[:n] {
			if b != 0 {
				return fmt.Errorf("%w: data after the end of the archive", ErrBadBundle)
			}
		}
		if total > maxTrailing {
			return fmt.Errorf("%w: more than %d bytes of padding after the archive", ErrBadBundle, maxTrailing)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadBundle, err)
		}
	}
}

type entryKind uint8

const (
	kindImplicitDir entryKind = iota + 1 // a parent directory without an entry of its own
	kindDir
	kindFile
	kindLink
)

// checkedEntry is a tar entry that passed the checks.
type checkedEntry struct {
	name       string // clean slash path
	kind       entryKind
	mode       os.FileMode // normalized permission bits of a file
	size       int64
	target     string   // of a symlink
	newParents []string // parent directories to create first, outermost first
	existed    bool     // a directory already created as a parent
}

// checker applies Unpack's rules to a sequence of tar headers. It models the tree being
// built, so it can refuse paths through symlinks or files and, at the end, resolve every
// symlink through the other symlinks as the kernel would.
type checker struct {
	o     UnpackOptions
	nodes map[string]*node
	links []string
	count int
	bytes int64
}

type node struct {
	kind   entryKind
	target string
}

func newChecker(o UnpackOptions) *checker {
	return &checker{o: o, nodes: make(map[string]*node)}
}

func refuse(name, format string, args ...any) error {
	return &UnsafeEntryError{Name: name, Reason: fmt.Sprintf(format, args...)}
}

// add checks h and records it; it returns nil and no error for an entry naming the root.
func (c *checker) add(h *tar.Header) (*checkedEntry, error) {
	raw := h.Name
	c.count++
	if c.count > c.o.MaxFiles {
		return nil, refuse(raw, "more than %d entries", c.o.MaxFiles)
	}
	switch {
	case raw == "":
		return nil, refuse(raw, "empty name")
	case strings.ContainsRune(raw, 0):
		return nil, refuse(raw, "name contains NUL")
	case strings.HasPrefix(raw, "/"):
		return nil, refuse(raw, "absolute path")
	}
	for _, comp := range strings.Split(raw, "/") {
		if comp == ".." {
			return nil, refuse(raw, `path has a ".." component`)
		}
	}
	name := path.Clean(raw)
	if name == ".." || strings.HasPrefix(name, "../") { // unreachable after the ".." check
		return nil, refuse(raw, "path is outside the destination")
	}
	if h.Mode&0o7000 != 0 { // c_ISUID, c_ISGID, c_ISVTX; type bits some writers add are ignored
		return nil, refuse(raw, "mode %#o has setuid, setgid or sticky bits", h.Mode)
	}
	e := &checkedEntry{name: name}
	switch h.Typeflag {
	case tar.TypeReg, '\x00':
		e.kind = kindFile
		e.mode = normMode(os.FileMode(h.Mode))
		e.size = h.Size
		if h.Size < 0 || h.Size > c.o.MaxBytes-c.bytes {
			return nil, refuse(raw, "more than %d bytes in total", c.o.MaxBytes)
		}
		c.bytes += h.Size
	case tar.TypeDir:
		e.kind = kindDir
	case tar.TypeSymlink:
		e.kind = kindLink
		e.target = h.Linkname
		if err := checkLinkTarget(raw, name, h.Linkname); err != nil {
			return nil, err
		}
	case tar.TypeLink:
		return nil, refuse(raw, "hard links are not allowed (to %q)", h.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		return nil, refuse(raw, "device file")
	case tar.TypeFifo:
		return nil, refuse(raw, "fifo")
	default:
		return nil, refuse(raw, "unsupported entry type %q", h.Typeflag)
	}
	if name == "." {
		if e.kind == kindDir {
			return nil, nil
		}
		return nil, refuse(raw, "names the destination itself")
	}
	// Parents: must be directories (never files or symlinks); missing ones get created.
	var missing []string
parents:
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		n := c.nodes[d]
		if n == nil {
			missing = append(missing, d)
			continue
		}
		switch n.kind {
		case kindFile:
			return nil, refuse(raw, "parent %q is a file", d)
		case kindLink:
			return nil, refuse(raw, "path goes through symlink %q", d)
		}
		break parents // an existing directory: its parents exist too
	}
	if n := c.nodes[name]; n != nil {
		if n.kind == kindImplicitDir && e.kind == kindDir {
			n.kind = kindDir
			e.existed = true
			return e, nil
		}
		return nil, refuse(raw, "duplicate entry")
	}
	for i := len(missing) - 1; i >= 0; i-- {
		c.nodes[missing[i]] = &node{kind: kindImplicitDir}
		e.newParents = append(e.newParents, missing[i])
	}
	c.nodes[name] = &node{kind: e.kind, target: e.target}
	if e.kind == kindLink {
		c.links = append(c.links, name)
	}
	return e, nil
}

// checkLinkTarget refuses link targets that are absolute or escape lexically from the
// link's directory; chains through other links are checked by finish.
func checkLinkTarget(raw, name, target string) error {
	switch {
	case target == "":
		return refuse(raw, "symlink with an empty target")
	case strings.ContainsRune(target, 0):
		return refuse(raw, "symlink target contains NUL")
	case strings.HasPrefix(target, "/"):
		return refuse(raw, "symlink to absolute path %q", target)
	}
	if t := path.Join(path.Dir(name), target); t == ".." || strings.HasPrefix(t, "../") {
		return refuse(raw, "symlink target %q escapes the destination", target)
	}
	return nil
}

// finish checks the whole tree: it has entries, and every symlink, followed through the
// other symlinks of the bundle, stays inside.
func (c *checker) finish() error {
	if len(c.nodes) == 0 { // nothing, or only entries for the root
		return fmt.Errorf("%w: no entries", ErrBadBundle)
	}
	sort.Strings(c.links)
	for _, l := range c.links {
		if err := c.resolve(l); err != nil {
			return err
		}
	}
	return nil
}

// resolve walks link's target component by component from the link's directory, expanding
// symlinks met on the way, and refuses if the walk leaves the root or loops.
func (c *checker) resolve(link string) error {
	var cur []string // resolved components of the current directory
	if d := path.Dir(link); d != "." {
		cur = strings.Split(d, "/")
	}
	todo := strings.Split(c.nodes[link].target, "/")
	hops := 0
	for len(todo) > 0 {
		comp := todo[0]
		todo = todo[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return refuse(link, "symlink target %q escapes the destination through other symlinks", c.nodes[link].target)
			}
			cur = cur[:len(cur)-1]
			continue
		}
		p := strings.Join(append(cur[:len(cur):len(cur)], comp), "/")
		if n := c.nodes[p]; n != nil && n.kind == kindLink {
			hops++
			if hops > maxLinkHops {
				return refuse(link, "too many levels of symlinks")
			}
			todo = append(strings.Split(n.target, "/"), todo...)
			continue
		}
		cur = append(cur, comp)
	}
	return nil
}
