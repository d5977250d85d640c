package artifact

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUnpackRoundTrip(t *testing.T) {
	tree := map[string]string{
		"bin/hello":          "#!/bin/sh\necho hello\n",
		"lib/x/y/z/deep.txt": "deep",
		"README":             "read me",
		"empty":              "",
	}
	files := writeTree(t, t.TempDir(), tree)
	var buf bytes.Buffer
	_, _, err := WriteBundle(&buf, files)
	require.NoError(t, err)

	for _, existing := range []bool{false, true} {
		parent := t.TempDir()
		dir := filepath.Join(parent, "release")
		if existing {
			require.NoError(t, os.Mkdir(dir, 0o700))
		}
		require.NoError(t, Unpack(bytes.NewReader(buf.Bytes()), dir, UnpackOptions{}))
		for p, body := range tree {
			got, err := os.ReadFile(filepath.Join(dir, p))
			require.NoError(t, err)
			assert.Equal(t, body, string(got))
			fi, err := os.Lstat(filepath.Join(dir, p))
			require.NoError(t, err)
			want := os.FileMode(0o644)
			if strings.HasPrefix(p, "bin/") {
				want = 0o755
			}
			assert.Equal(t, want, fi.Mode(), p)
		}
		for _, d := range []string{".", "bin", "lib", "lib/x", "lib/x/y", "lib/x/y/z"} {
			fi, err := os.Lstat(filepath.Join(dir, d))
			require.NoError(t, err)
			assert.Equal(t, os.ModeDir|0o755, fi.Mode(), d)
		}
		des, err := os.ReadDir(parent)
		require.NoError(t, err)
		assert.Len(t, des, 1, "no temp dir left")
	}
}

// TestUnpackSafeLinks: symlinks that stay inside are kept as they are.
func TestUnpackSafeLinks(t *testing.T) {
	data := tarZst(t,
		dirEnt("bin/"),
		file("bin/app-1.2", "app"),
		link("bin/app", "app-1.2"),
		link("current", "bin/../bin/app"),
		link("self", "."),
		link("dangling", "not/there"),
		dirEnt("d/"),
		link("d/up", ".."),
		link("via", "d/up/bin"),
		tent{name: "./x/", typ: tar.TypeDir, mode: 0o700}, // dir with odd mode: normalized
		file("x/y", "y"),
		dirEnt("./"),
	)
	dir := filepath.Join(t.TempDir(), "out")
	require.NoError(t, Unpack(bytes.NewReader(data), dir, UnpackOptions{}))
	b, err := os.ReadFile(filepath.Join(dir, "current"))
	require.NoError(t, err)
	assert.Equal(t, "app", string(b))
	b, err = os.ReadFile(filepath.Join(dir, "via", "app"))
	require.NoError(t, err)
	assert.Equal(t, "app", string(b))
	target, err := os.Readlink(filepath.Join(dir, "bin", "app"))
	require.NoError(t, err)
	assert.Equal(t, "app-1.2", target)
	fi, err := os.Lstat(filepath.Join(dir, "x"))
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o755, fi.Mode())
}

func TestUnpackRefuses(t *testing.T) {
	valid := validBundle(t)
	big := strings.Repeat("x", 11)
	trailing := append(rawTar(t, file("a", "a")), []byte("garbage after the end")...)
	type unsafe = UnsafeEntryError
	for _, tc := range []struct {
		name   string
		data   []byte
		o      UnpackOptions
		unsafe string // substring of UnsafeEntryError.Reason; "" means ErrBadBundle
	}{
		{"dotdot", tarZst(t, file("../x", "x")), UnpackOptions{}, `".."`},
		{"inner dotdot", tarZst(t, file("a/../../x", "x")), UnpackOptions{}, `".."`},
		{"harmless-looking dotdot", tarZst(t, file("a/../x", "x")), UnpackOptions{}, `".."`},
		{"absolute", tarZst(t, file("/etc/x", "x")), UnpackOptions{}, "absolute path"},
		{"symlink absolute", tarZst(t, link("passwd", "/etc/passwd")), UnpackOptions{}, "absolute"},
		{"symlink up then through", tarZst(t, link("a", ".."), file("a/x", "x")), UnpackOptions{}, "escapes"},
		{"symlink up from subdir", tarZst(t, dirEnt("d/"), link("d/l", "../../x")), UnpackOptions{}, "escapes"},
		{"symlink chain escaping", tarZst(t, dirEnt("d/"), link("d/l", ".."), link("m", "d/l/..")), UnpackOptions{}, "through other symlinks"},
		{"symlink chain escaping, link first", tarZst(t, link("m", "d/l/../x"), dirEnt("d/"), link("d/l", "..")), UnpackOptions{}, "through other symlinks"},
		{"symlink chain of three", tarZst(t, dirEnt("p/"), dirEnt("p/q/"), link("p/q/l1", "../.."), link("p/l2", "q/l1/.."), link("l3", "p/l2/x")), UnpackOptions{}, "through other symlinks"},
		{"symlink loop", tarZst(t, link("a", "b"), link("b", "a")), UnpackOptions{}, "too many levels"},
		{"hardlink escaping", tarZst(t, tent{name: "h", typ: tar.TypeLink, linkname: "../x"}), UnpackOptions{}, "hard links"},
		{"hardlink inside", tarZst(t, file("a", "a"), tent{name: "h", typ: tar.TypeLink, linkname: "a"}), UnpackOptions{}, "hard links"},
		{"char device", tarZst(t, tent{name: "null", typ: tar.TypeChar, mode: 0o666}), UnpackOptions{}, "device"},
		{"block device", tarZst(t, tent{name: "sda", typ: tar.TypeBlock, mode: 0o660}), UnpackOptions{}, "device"},
		{"fifo", tarZst(t, tent{name: "p", typ: tar.TypeFifo, mode: 0o644}), UnpackOptions{}, "fifo"},
		{"sparse (malformed)", tarZst(t, tent{name: "s", typ: tar.TypeGNUSparse, mode: 0o644}), UnpackOptions{}, ""},
		{"contiguous file", tarZst(t, tent{name: "c", typ: tar.TypeCont, mode: 0o644}), UnpackOptions{}, "unsupported"},
		{"unknown type", tarZst(t, tent{name: "u", typ: 'Z', mode: 0o644}), UnpackOptions{}, "unsupported"},
		{"setuid file", tarZst(t, tent{name: "su", typ: tar.TypeReg, mode: 0o4755, body: "x"}), UnpackOptions{}, "setuid"},
		{"setgid file", tarZst(t, tent{name: "sg", typ: tar.TypeReg, mode: 0o2755, body: "x"}), UnpackOptions{}, "setuid"},
		{"sticky dir", tarZst(t, tent{name: "tmp/", typ: tar.TypeDir, mode: 0o1777}), UnpackOptions{}, "sticky"},
		{"duplicate file", tarZst(t, file("a", "1"), file("a", "2")), UnpackOptions{}, "duplicate"},
		{"duplicate after cleaning", tarZst(t, file("a/b", "1"), file("./a//b", "2")), UnpackOptions{}, "duplicate"},
		{"duplicate dir", tarZst(t, dirEnt("a/"), dirEnt("a/")), UnpackOptions{}, "duplicate"},
		{"file over dir", tarZst(t, file("a/b", "1"), file("a", "2")), UnpackOptions{}, "duplicate"},
		{"symlink over file", tarZst(t, file("a", "1"), link("a", "b")), UnpackOptions{}, "duplicate"},
		{"file under file", tarZst(t, file("a", "1"), file("a/b", "2")), UnpackOptions{}, "is a file"},
		{"file through symlinked dir", tarZst(t, dirEnt("sub/"), link("d", "sub"), file("d/x", "x")), UnpackOptions{}, "through symlink"},
		{"root as file", tarZst(t, file(".", "x")), UnpackOptions{}, "destination itself"},
		{"too many bytes", tarZst(t, file("a", big)), UnpackOptions{MaxBytes: 10}, "more than 10 bytes"},
		{"too many bytes in total", tarZst(t, file("a", "123456"), file("b", "123456")), UnpackOptions{MaxBytes: 10}, "more than 10 bytes"},
		{"too many files", tarZst(t, file("a", ""), file("b", ""), file("c", ""), file("d", "")), UnpackOptions{MaxFiles: 3}, "more than 3 entries"},
		{"hostile entry after good ones", tarZst(t, dirEnt("ok/"), file("ok/a", "a"), file("ok/b", "b"), file("../evil", "x")), UnpackOptions{}, `".."`},
		{"truncated stream", valid[:len(valid)/2], UnpackOptions{}, ""},
		{"truncated checksum", valid[:len(valid)-1], UnpackOptions{}, ""},
		{"flipped byte", flip(valid, len(valid)/2), UnpackOptions{}, ""},
		{"not zstd", []byte("just some text, not a bundle at all"), UnpackOptions{}, ""},
		{"plain tar", rawTar(t, file("a", "a")), UnpackOptions{}, ""},
		{"empty stream", nil, UnpackOptions{}, ""},
		{"empty tar", zst(t, rawTar(t)), UnpackOptions{}, ""},
		{"empty zstd frame", zst(t, nil), UnpackOptions{}, ""},
		{"only the root", tarZst(t, dirEnt("./")), UnpackOptions{}, ""},
		{"data after archive", zst(t, trailing), UnpackOptions{}, ""},
		{"garbage after zstd", append(bytes.Clone(valid), "junk"...), UnpackOptions{}, ""},
		{"truncated tar", zst(t, rawTar(t, file("a", strings.Repeat("a", 2000)))[:700]), UnpackOptions{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "out")
			err := Unpack(bytes.NewReader(tc.data), dir, tc.o)
			require.Error(t, err)
			if tc.unsafe != "" {
				var ue *unsafe
				require.ErrorAs(t, err, &ue)
				assert.Contains(t, ue.Reason, tc.unsafe)
				assert.False(t, errors.Is(err, ErrBadBundle))
			} else {
				assert.ErrorIs(t, err, ErrBadBundle)
			}
			des, rerr := os.ReadDir(parent)
			require.NoError(t, rerr)
			assert.Empty(t, des, "dir absent, no temp dir left")

			// Into an existing empty dir: it stays empty.
			require.NoError(t, os.Mkdir(dir, 0o755))
			require.Error(t, Unpack(bytes.NewReader(tc.data), dir, tc.o))
			des, rerr = os.ReadDir(parent)
			require.NoError(t, rerr)
			require.Len(t, des, 1)
			des, rerr = os.ReadDir(dir)
			require.NoError(t, rerr)
			assert.Empty(t, des)

			// Entries agrees when the limits are the defaults.
			if tc.o == (UnpackOptions{}) {
				_, err := Entries(bytes.NewReader(tc.data))
				assert.Error(t, err)
			}
		})
	}
}

// flip returns a copy of b with the byte at i inverted.
func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}

func TestUnpackDestination(t *testing.T) {
	valid := validBundle(t)
	parent := t.TempDir()

	full := filepath.Join(parent, "full")
	require.NoError(t, os.MkdirAll(filepath.Join(full, "keep"), 0o755))
	err := Unpack(bytes.NewReader(valid), full, UnpackOptions{})
	assert.ErrorContains(t, err, "not empty")
	assert.DirExists(t, filepath.Join(full, "keep"))

	afile := filepath.Join(parent, "afile")
	require.NoError(t, os.WriteFile(afile, nil, 0o644))
	assert.ErrorContains(t, Unpack(bytes.NewReader(valid), afile, UnpackOptions{}), "not a directory")

	// A missing parent is created.
	nested := filepath.Join(parent, "x", "y", "z")
	require.NoError(t, Unpack(bytes.NewReader(valid), nested, UnpackOptions{}))
	assert.FileExists(t, filepath.Join(nested, "bin", "hello"))

	// Twice into the same dir: the second finds it not empty.
	assert.ErrorContains(t, Unpack(bytes.NewReader(valid), nested, UnpackOptions{}), "not empty")
}

func TestUnsafeEntryErrorText(t *testing.T) {
	err := &UnsafeEntryError{Name: "../x", Reason: "bad"}
	assert.Equal(t, `artifact: refuse entry "../x": bad`, err.Error())
}
