package dockerimage

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
)

// Rootfs is the file tree of an image built FROM scratch. Paths are absolute
// slash paths inside the image. The zero value is empty and ready to use.
type Rootfs struct {
	entries map[string]entry
}

type entry struct {
	src  string // host file to copy (symlinks followed); "" for data and dirs
	data []byte
	mode os.FileMode // permission bits (and os.ModeSticky) only
	dir  bool
}

func (r *Rootfs) put(dst string, e entry) error {
	if !strings.HasPrefix(dst, "/") || path.Clean(dst) != dst || dst == "/" {
		return fmt.Errorf("rootfs: path %q is not a clean absolute path", dst)
	}
	if r.entries == nil {
		r.entries = map[string]entry{}
	}
	r.entries[dst] = e
	return nil
}

// AddFile copies the host file src (following symlinks) to dst.
func (r *Rootfs) AddFile(dst, src string, mode os.FileMode) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("rootfs: add %s: %w", dst, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("rootfs: add %s: %s is not a regular file", dst, src)
	}
	return r.put(dst, entry{src: src, mode: mode})
}

// AddData writes data to dst.
func (r *Rootfs) AddData(dst string, data []byte, mode os.FileMode) error {
	return r.put(dst, entry{data: data, mode: mode})
}

// AddDir makes the directory dst (mode 01777 gives a /tmp).
func (r *Rootfs) AddDir(dst string, mode os.FileMode) error {
	return r.put(dst, entry{dir: true, mode: mode})
}

// AddMinimalSystem adds what every image here needs: /etc/passwd and
// /etc/group with root and nobody, /etc/nsswitch.conf, and /tmp.
func (r *Rootfs) AddMinimalSystem() error {
	return errors.Join(
		r.AddData("/etc/passwd", []byte("root:x:0:0:root:/root:/nonexistent\nnobody:x:65534:65534:nobody:/nonexistent:/nonexistent\n"), 0o644),
		r.AddData("/etc/group", []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644),
		r.AddData("/etc/nsswitch.conf", []byte("passwd: files\ngroup: files\nhosts: files dns\n"), 0o644),
		r.AddDir("/tmp", 0o1777|os.ModeSticky),
		r.AddDir("/root", 0o700),
	)
}

// AddLibraries adds the shared libraries (and the ELF interpreter) that the
// host executables exes link, as ldd resolves them, at the paths ldd names.
// A statically linked executable needs nothing. A library ldd cannot find
// is an error that names it.
func (r *Rootfs) AddLibraries(exes ...string) error {
	for _, exe := range exes {
		libs, err := Libraries(exe)
		if err != nil {
			return err
		}
		for _, l := range libs {
			if err := r.AddFile(l, l, 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

// AddLibrariesNamed adds every library the host's dynamic linker cache
// (ldconfig -p) knows whose soname starts with one of prefixes ("libgmp.so."),
// for the native architecture, and what those libraries link in turn.
// Prefixes that match nothing are skipped: the list names what a GHC-built
// executable may need, not what every host has.
func (r *Rootfs) AddLibrariesNamed(prefixes ...string) error {
	out, err := exec.Command("ldconfig", "-p").Output()
	if err != nil {
		if _, lerr := exec.Command("/sbin/ldconfig", "-p").Output(); lerr == nil {
			out, err = exec.Command("/sbin/ldconfig", "-p").Output()
		}
	}
	if err != nil {
		return fmt.Errorf("rootfs: ldconfig -p: %w", err)
	}
	var found []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// "\tlibgmp.so.10 (libc6,x86-64) => /lib/x86_64-linux-gnu/libgmp.so.10"
		line := strings.TrimSpace(sc.Text())
		name, rest, ok := strings.Cut(line, " ")
		if !ok || !strings.Contains(rest, "=> ") || !nativeArch(rest) {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				_, file, _ := strings.Cut(rest, "=> ")
				found = append(found, strings.TrimSpace(file))
			}
		}
	}
	for _, f := range found {
		if err := r.AddFile(f, f, 0o755); err != nil {
			return err
		}
	}
	return r.AddLibraries(found...)
}

// nativeArch tells whether an ldconfig -p flags field "(libc6,x86-64)" is
// for this machine's 64-bit libraries.
func nativeArch(flags string) bool {
	return strings.Contains(flags, "x86-64") || strings.Contains(flags, "AArch64") || strings.Contains(flags, "64bit")
}

// Libraries lists the absolute paths of the shared libraries and the ELF
// interpreter exe needs, as ldd resolves them on this host; nil for a
// statically linked executable.
func Libraries(exe string) ([]string, error) {
	cmd := exec.Command("ldd", exe)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	text := out.String() + errb.String()
	if strings.Contains(text, "not a dynamic executable") || strings.Contains(text, "statically linked") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w: %s", exe, err, strings.TrimSpace(text))
	}
	var libs, missing []string
	for _, line := range strings.Split(out.String(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		// "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)",
		// "/lib64/ld-linux-x86-64.so.2 (0x...)", "linux-vdso.so.1 (0x...)",
		// "libfoo.so.1 => not found".
		if name, file, ok := strings.Cut(line, "=> "); ok {
			file = strings.TrimSpace(file)
			if strings.HasPrefix(file, "not found") {
				missing = append(missing, strings.TrimSpace(name))
				continue
			}
			if i := strings.Index(file, " ("); i >= 0 {
				file = file[:i]
			}
			if strings.HasPrefix(file, "/") {
				libs = append(libs, file)
			}
			continue
		}
		if strings.HasPrefix(line, "/") {
			if i := strings.Index(line, " ("); i >= 0 {
				line = line[:i]
			}
			libs = append(libs, line)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("ldd %s: shared libraries not found on this host: %s", exe, strings.Join(missing, ", "))
	}
	return libs, nil
}

// paths are the entries in order, with every parent directory first.
func (r *Rootfs) paths() []string {
	seen := map[string]bool{}
	for p := range r.entries {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			seen[d] = true
		}
		seen[p] = true
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func (r *Rootfs) entry(p string) entry {
	if e, ok := r.entries[p]; ok {
		return e
	}
	return entry{dir: true, mode: 0o755} // an implied parent
}

// Digest is the hex sha256 of the tree: paths, modes and contents. Two trees
// with the same digest give the same image.
func (r *Rootfs) Digest() (string, error) {
	h := sha256.New()
	for _, p := range r.paths() {
		e := r.entry(p)
		fmt.Fprintf(h, "%s\x00%o\x00%v\x00", p, e.mode, e.dir)
		if e.dir {
			continue
		}
		if err := r.copyContent(h, e); err != nil {
			return "", err
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (r *Rootfs) copyContent(w io.Writer, e entry) error {
	if e.src == "" {
		_, err := w.Write(e.data)
		return err
	}
	f, err := os.Open(e.src)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("rootfs: read %s: %w", e.src, err)
	}
	return nil
}
