package artifact

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
)

// tent is one hand-made tar entry for hostile archives.
type tent struct {
	name     string
	typ      byte
	mode     int64
	body     string
	linkname string
	size     int64 // overrides len(body) in the header when > 0
}

func file(name, body string) tent { return tent{name: name, typ: tar.TypeReg, mode: 0o644, body: body} }
func dirEnt(name string) tent     { return tent{name: name, typ: tar.TypeDir, mode: 0o755} }
func link(name, target string) tent {
	return tent{name: name, typ: tar.TypeSymlink, mode: 0o777, linkname: target}
}

// rawTar builds an uncompressed tar; it never fails on hostile content.
func rawTar(tb testing.TB, ents ...tent) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		size := int64(len(e.body))
		if e.typ != tar.TypeReg {
			size = 0
		}
		h := &tar.Header{Typeflag: e.typ, Name: e.name, Mode: e.mode, Size: size, Linkname: e.linkname, ModTime: time.Unix(0, 0)}
		if e.typ == tar.TypeChar || e.typ == tar.TypeBlock {
			h.Devmajor, h.Devminor = 1, 3
		}
		require.NoError(tb, tw.WriteHeader(h))
		if size > 0 {
			_, err := tw.Write([]byte(e.body))
			require.NoError(tb, err)
		}
	}
	require.NoError(tb, tw.Close())
	return buf.Bytes()
}

func zst(tb testing.TB, raw []byte) []byte {
	tb.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	require.NoError(tb, err)
	defer enc.Close()
	return enc.EncodeAll(raw, nil)
}

// tarZst builds a hostile tar.zst.
func tarZst(tb testing.TB, ents ...tent) []byte { return zst(tb, rawTar(tb, ents...)) }

// writeTree writes files (path -> content) under dir and returns them as Files, executable
// when the path starts with "bin/".
func writeTree(tb testing.TB, dir string, tree map[string]string) []File {
	tb.Helper()
	var files []File
	for p, body := range tree {
		src := filepath.Join(dir, filepath.FromSlash(p))
		require.NoError(tb, os.MkdirAll(filepath.Dir(src), 0o755))
		mode := os.FileMode(0o644)
		if strings.HasPrefix(p, "bin/") {
			mode = 0o755
		}
		require.NoError(tb, os.WriteFile(src, []byte(body), mode))
		files = append(files, File{Path: p, Source: src, Mode: mode})
	}
	return files
}

// validBundle is a small bundle made by WriteBundle.
func validBundle(tb testing.TB) []byte {
	tb.Helper()
	files := writeTree(tb, tb.TempDir(), map[string]string{
		"bin/hello":        "#!/bin/sh\necho hello\n",
		"share/doc/README": "hello docs\n",
		"etc/app.conf":     "port = 8080\n",
	})
	var buf bytes.Buffer
	_, _, err := WriteBundle(&buf, files)
	require.NoError(tb, err)
	return buf.Bytes()
}
