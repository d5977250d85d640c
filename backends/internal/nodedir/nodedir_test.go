package nodedir_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/distributive-flow/dflow/backends/internal/nodedir"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/stretchr/testify/require"
)

func TestRecord(t *testing.T) {
	dir := t.TempDir()
	_, err := nodedir.Read(dir)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.True(t, nodedir.Gone(filepath.Join(dir, "missing"), deploy.Node{}), "no directory")
	require.True(t, nodedir.Gone(dir, deploy.Node{ID: "local-2-abcd"}), "no record of the node named")
	require.False(t, nodedir.Gone(dir, deploy.Node{}), "no ID names whatever is there, a directory without a record too")

	n := deploy.Node{Index: 2, ID: "local-2-abcd", Address: "127.0.0.3"}
	require.NoError(t, nodedir.Write(dir, n))
	got, err := nodedir.Read(dir)
	require.NoError(t, err)
	require.Equal(t, n, got)
	require.False(t, nodedir.Gone(dir, n))
	require.False(t, nodedir.Gone(dir, deploy.Node{Index: 2}), "no ID names whatever is there")
	require.True(t, nodedir.Gone(dir, deploy.Node{Index: 2, ID: "local-2-older"}), "another incarnation")

	require.NoError(t, os.WriteFile(filepath.Join(dir, nodedir.Record), []byte("{"), 0o644))
	_, err = nodedir.Read(dir)
	require.ErrorContains(t, err, nodedir.Record)
	require.False(t, nodedir.Gone(dir, n), "an unreadable record is destroyed, not skipped")
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "authorized_keys")
	require.NoError(t, nodedir.WriteFile(path, []byte("old"), 0o600))
	require.NoError(t, nodedir.WriteFile(path, []byte("new"), 0o600))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "new", string(b))
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o600), st.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left")

	require.Error(t, nodedir.WriteFile(filepath.Join(dir, "missing", "x"), nil, 0o644))
}

func TestIndices(t *testing.T) {
	root := t.TempDir()
	got, err := nodedir.Indices(filepath.Join(root, "missing"))
	require.NoError(t, err)
	require.Equal(t, []int{}, got)
	for _, name := range []string{"10", "2", "x", "-1"} {
		require.NoError(t, os.Mkdir(filepath.Join(root, name), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "3"), nil, 0o644))
	got, err = nodedir.Indices(root)
	require.NoError(t, err)
	require.Equal(t, []int{2, 10}, got, "directories named by an index, sorted")
}
