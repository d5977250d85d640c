package artifact

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var reproTree = map[string]string{
	"bin/hello":           "\x7fELF pretend binary",
	"bin/helper":          strings.Repeat("helper ", 10000),
	"share/hello/a.txt":   "a",
	"share/hello/b/c.txt": "c",
	"empty":               "",
	strings.Repeat("long-directory-name/", 8) + "file-with-a-long-name.txt": "long path needs PAX",
	"unicodé/ファイル.txt": "non-ASCII name",
}

// makeReproFiles writes reproTree under a fresh dir with the given on-disk permissions,
// mtime and owner, and returns the Files in the given order.
func makeReproFiles(t *testing.T, perm os.FileMode, mtime time.Time, uid int, shuffle uint64) []File {
	dir := t.TempDir()
	files := writeTree(t, dir, reproTree)
	for i := range files {
		require.NoError(t, os.Chmod(files[i].Source, perm|(files[i].Mode&0o100)))
		require.NoError(t, os.Chtimes(files[i].Source, mtime, mtime))
		if os.Geteuid() == 0 {
			require.NoError(t, os.Chown(files[i].Source, uid, uid))
		}
		files[i].Mode = perm | (files[i].Mode & 0o100) // e.g. 0o700 / 0o600
	}
	r := rand.New(rand.NewPCG(shuffle, shuffle))
	r.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	return files
}

func TestWriteBundleReproducible(t *testing.T) {
	var outs [][]byte
	var digests []string
	for i, v := range []struct {
		perm  os.FileMode
		mtime time.Time
		uid   int
	}{
		{0o644, time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC), 0},
		{0o600, time.Date(2024, 6, 7, 8, 9, 10, 11, time.UTC), 1234},
		{0o664, time.Now(), 4321},
	} {
		files := makeReproFiles(t, v.perm, v.mtime, v.uid, uint64(i+1))
		var buf bytes.Buffer
		d, n, err := WriteBundle(&buf, files)
		require.NoError(t, err)
		sum := sha256.Sum256(buf.Bytes())
		assert.Equal(t, hex.EncodeToString(sum[:]), d)
		assert.Equal(t, int64(buf.Len()), n)
		assert.True(t, ValidDigest(d))
		outs = append(outs, buf.Bytes())
		digests = append(digests, d)
	}
	for i := 1; i < len(outs); i++ {
		assert.Equal(t, digests[0], digests[i])
		assert.True(t, bytes.Equal(outs[0], outs[i]), "bundle %d differs", i)
	}

	// One changed byte changes the digest.
	files := makeReproFiles(t, 0o644, time.Now(), 0, 9)
	for _, f := range files {
		if f.Path == "share/hello/a.txt" {
			require.NoError(t, os.WriteFile(f.Source, []byte("b"), 0o644))
		}
	}
	var buf bytes.Buffer
	d, _, err := WriteBundle(&buf, files)
	require.NoError(t, err)
	assert.NotEqual(t, digests[0], d)
}

// TestWriteBundleHeaders reads the tar inside a bundle: order, parents, normalized fields.
func TestWriteBundleHeaders(t *testing.T) {
	files := makeReproFiles(t, 0o600, time.Now(), 77, 3)
	var buf bytes.Buffer
	_, _, err := WriteBundle(&buf, files)
	require.NoError(t, err)
	zr, err := zstd.NewReader(&buf)
	require.NoError(t, err)
	defer zr.Close()
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		names = append(names, strings.TrimSuffix(h.Name, "/"))
		assert.Equal(t, int64(0), h.ModTime.Unix(), h.Name)
		assert.Zero(t, h.Uid)
		assert.Zero(t, h.Gid)
		assert.Empty(t, h.Uname)
		assert.Empty(t, h.Gname)
		switch {
		case h.Typeflag == tar.TypeDir:
			assert.Equal(t, int64(0o755), h.Mode, h.Name)
		case strings.HasPrefix(h.Name, "bin/"):
			assert.Equal(t, int64(0o755), h.Mode, h.Name)
		default:
			assert.Equal(t, int64(0o644), h.Mode, h.Name)
		}
		if len(h.Name) < 100 && !strings.HasPrefix(h.Name, "unicod") {
			assert.Equal(t, tar.FormatUSTAR, h.Format, h.Name)
		}
	}
	assert.IsIncreasing(t, names)
	assert.Contains(t, names, "share")
	assert.Contains(t, names, "share/hello/b")
	assert.Contains(t, names, "long-directory-name")
}

func TestWriteBundleRejects(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(src, []byte("x"), 0o644))
	for _, tc := range []struct {
		name  string
		files []File
		want  string
	}{
		{"none", nil, "no files"},
		{"empty path", []File{{Path: "", Source: src}}, "empty"},
		{"dot", []File{{Path: ".", Source: src}}, "empty"},
		{"absolute", []File{{Path: "/etc/x", Source: src}}, "absolute"},
		{"dotdot", []File{{Path: "../x", Source: src}}, "outside"},
		{"unclean", []File{{Path: "a/../b", Source: src}}, "not clean"},
		{"trailing slash", []File{{Path: "a/", Source: src}}, "not clean"},
		{"duplicate", []File{{Path: "a", Source: src}, {Path: "a", Source: src}}, "duplicate"},
		{"file is parent", []File{{Path: "a", Source: src}, {Path: "a/b", Source: src}}, "is a file"},
		{"file is parent, other order", []File{{Path: "a/b", Source: src}, {Path: "a", Source: src}}, "is a file"},
		{"missing source", []File{{Path: "a", Source: filepath.Join(dir, "nope")}}, "no such file"},
		{"source is a dir", []File{{Path: "a", Source: dir}}, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := WriteBundle(io.Discard, tc.files)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestWriteBundleFile(t *testing.T) {
	dir := t.TempDir()
	files := writeTree(t, t.TempDir(), map[string]string{"bin/x": "x", "y": "y"})
	out := filepath.Join(dir, "b.tar.zst")
	d, n, err := WriteBundleFile(out, files)
	require.NoError(t, err)
	fd, fn, err := FileSHA256(out)
	require.NoError(t, err)
	assert.Equal(t, d, fd)
	assert.Equal(t, n, fn)
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, des, 1, "no temp file left")

	// A failure leaves neither the target nor a temp file.
	_, _, err = WriteBundleFile(filepath.Join(dir, "bad.tar.zst"), []File{{Path: "a", Source: filepath.Join(dir, "nope")}})
	require.Error(t, err)
	des, err = os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, des, 1)
}

func TestEntries(t *testing.T) {
	files := writeTree(t, t.TempDir(), map[string]string{"bin/hello": "hi", "share/x/y": "yy"})
	var buf bytes.Buffer
	_, _, err := WriteBundle(&buf, files)
	require.NoError(t, err)
	es, err := Entries(&buf)
	require.NoError(t, err)
	sum := func(s string) string { b := sha256.Sum256([]byte(s)); return hex.EncodeToString(b[:]) }
	assert.Equal(t, []Entry{
		{Path: "bin", Mode: os.ModeDir | 0o755},
		{Path: "bin/hello", Mode: 0o755, Size: 2, SHA256: sum("hi")},
		{Path: "share", Mode: os.ModeDir | 0o755},
		{Path: "share/x", Mode: os.ModeDir | 0o755},
		{Path: "share/x/y", Mode: 0o644, Size: 2, SHA256: sum("yy")},
	}, es)

	_, err = Entries(bytes.NewReader(tarZst(t, file("../x", "x"))))
	var ue *UnsafeEntryError
	assert.ErrorAs(t, err, &ue)
	_, err = Entries(strings.NewReader("not zstd"))
	assert.ErrorIs(t, err, ErrBadBundle)
}
