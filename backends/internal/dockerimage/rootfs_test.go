package dockerimage_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/distributive-flow/dflow/backends/internal/dockerimage"
	"github.com/stretchr/testify/require"
)

func TestLibraries(t *testing.T) {
	libs, err := dockerimage.Libraries("/bin/ls")
	require.NoError(t, err)
	var hasLibc, hasLoader bool
	for _, l := range libs {
		require.True(t, filepath.IsAbs(l), l)
		hasLibc = hasLibc || filepath.Base(l) == "libc.so.6"
		hasLoader = hasLoader || filepath.Base(filepath.Dir(l)) == "lib64" || filepath.Base(l) == "ld-linux-x86-64.so.2"
	}
	require.True(t, hasLibc && hasLoader, "libc and the loader of /bin/ls: %v", libs)

	script := filepath.Join(t.TempDir(), "script")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755))
	libs, err = dockerimage.Libraries(script)
	require.NoError(t, err)
	require.Empty(t, libs, "not a dynamic executable: nothing to add")
}

func TestRootfsDigestFollowsContent(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(f, []byte("a"), 0o644))
	r := &dockerimage.Rootfs{}
	require.NoError(t, r.AddFile("/x/f", f, 0o755))
	d1, err := r.Digest()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(f, []byte("b"), 0o644))
	d2, err := r.Digest()
	require.NoError(t, err)
	require.NotEqual(t, d1, d2)
	require.Error(t, r.AddFile("relative", f, 0o644))
}
