package artifact

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzUnpack feeds Unpack arbitrary bundles. When compress is true, data is taken as a raw
// tar and zstd-compressed first, so the fuzzer can reach the tar and path checks instead
// of stopping at zstd checksums. After every input: on error nothing is left next to the
// destination; on success everything is inside it, there are only directories, regular
// files and symlinks, no setuid/setgid/sticky bits, and no symlink resolves outside.
func FuzzUnpack(f *testing.F) {
	f.Add(validBundle(f), false)
	for _, ents := range [][]tent{
		{dirEnt("bin/"), file("bin/app", "app"), link("current", "bin/app")},
		{file("../x", "x")},
		{file("a/../../x", "x")},
		{file("/etc/x", "x")},
		{link("p", "/etc/passwd")},
		{link("a", ".."), file("a/x", "x")},
		{dirEnt("d/"), link("d/l", ".."), link("m", "d/l/..")},
		{link("m", "d/l/../x"), dirEnt("d/"), link("d/l", "..")},
		{tent{name: "h", typ: tar.TypeLink, linkname: "../x"}},
		{tent{name: "c", typ: tar.TypeChar, mode: 0o666}},
		{tent{name: "f", typ: tar.TypeFifo, mode: 0o644}},
		{tent{name: "s", typ: tar.TypeReg, mode: 0o4755, body: "x"}},
		{file("a", "1"), file("a", "2")},
		{dirEnt("sub/"), link("d", "sub"), file("d/x", "x")},
		{link("a", "b"), link("b", "a")},
	} {
		raw := rawTar(f, ents...)
		f.Add(raw, true)
		f.Add(zst(f, raw), false)
	}
	f.Add([]byte{}, false)
	f.Add([]byte("not zstd"), false)

	f.Fuzz(func(t *testing.T, data []byte, compress bool) {
		if compress {
			data = zst(t, data)
		}
		parent := t.TempDir()
		dir := filepath.Join(parent, "out")
		err := Unpack(bytes.NewReader(data), dir, UnpackOptions{MaxBytes: 1 << 20, MaxFiles: 200})
		des, rerr := os.ReadDir(parent)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if len(des) != 0 {
				t.Fatalf("refused (%v) but left %v", err, des)
			}
			return
		}
		if len(des) != 1 || des[0].Name() != "out" {
			t.Fatalf("wrote outside dir: %v", des)
		}
		werr := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			m := fi.Mode()
			if m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
				t.Errorf("%s: mode %v", p, m)
			}
			switch {
			case m.IsDir(), m.IsRegular():
			case m.Type() == fs.ModeSymlink:
				if fsLinkEscapes(t, dir, p) {
					target, _ := os.Readlink(p)
					t.Errorf("symlink %s -> %s escapes %s", p, target, dir)
				}
			default:
				t.Errorf("%s: special file %v", p, m)
			}
			return nil
		})
		if werr != nil {
			t.Fatal(werr)
		}
	})
}

// fsLinkEscapes resolves the symlink at link on the real file system, one component at a
// time, and tells whether it leaves root. A loop is not an escape (the kernel says ELOOP).
func fsLinkEscapes(t *testing.T, root, link string) bool {
	rel, err := filepath.Rel(root, filepath.Dir(link))
	if err != nil {
		t.Fatal(err)
	}
	var cur []string
	if rel != "." {
		cur = strings.Split(rel, string(filepath.Separator))
	}
	target, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.IsAbs(target) {
		return true
	}
	todo := strings.Split(target, "/")
	for hops := 0; len(todo) > 0; {
		comp := todo[0]
		todo = todo[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return true
			}
			cur = cur[:len(cur)-1]
			continue
		}
		p := filepath.Join(append([]string{root}, append(cur[:len(cur):len(cur)], comp)...)...)
		if fi, err := os.Lstat(p); err == nil && fi.Mode().Type() == fs.ModeSymlink {
			next, err := os.Readlink(p)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.IsAbs(next) {
				return true
			}
			if hops++; hops > 100 {
				return false
			}
			todo = append(strings.Split(next, "/"), todo...)
			continue
		}
		cur = append(cur, comp)
	}
	return false
}
