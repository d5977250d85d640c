package statedir_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/distributive-flow/dflow/statedir"
	"github.com/stretchr/testify/require"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Mode().Perm()
}

func TestEnsure(t *testing.T) {
	tests := []struct {
		name    string
		before  fs.FileMode // 0: missing
		want    fs.FileMode
		wantErr string
	}{
		{name: "missing is created 0700", want: 0o700},
		{name: "an old 0755 install is tightened", before: 0o755, want: 0o700},
		{name: "group bits go", before: 0o770, want: 0o700},
		{name: "already private stays", before: 0o700, want: 0o700},
		{name: "the owner's own bits are kept", before: 0o755 &^ 0o200, want: 0o500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "project", ".dflow")
			if tt.before != 0 {
				require.NoError(t, os.MkdirAll(dir, 0o755))
				require.NoError(t, os.Chmod(dir, tt.before))
				t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
			}
			require.NoError(t, statedir.Ensure(dir))
			require.Equal(t, tt.want, mode(t, dir))
			require.NoError(t, statedir.Ensure(dir), "Ensure is safe twice")
			require.Equal(t, tt.want, mode(t, dir))
		})
	}
}

func TestEnsureRefusesAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".dflow")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	err := statedir.Ensure(path)
	require.ErrorContains(t, err, "state directory "+path)
	require.ErrorContains(t, err, "not a directory")
}

func TestTighten(t *testing.T) {
	tests := []struct {
		name         string
		before, want fs.FileMode
	}{
		{"an old 0644 database", 0o644, 0o600},
		{"world-writable", 0o666, 0o600},
		{"an executable keeps its owner bits", 0o755, 0o700},
		{"already private", 0o600, 0o600},
		{"read-only stays read-only", 0o444, 0o400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "store.db")
			require.NoError(t, os.WriteFile(path, []byte("x"), 0o600))
			require.NoError(t, os.Chmod(path, tt.before))
			require.NoError(t, statedir.Tighten(path, filepath.Join(t.TempDir(), "missing")))
			require.Equal(t, tt.want, mode(t, path))
		})
	}
}

func TestTightenLeavesLinksAlone(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	require.NoError(t, os.WriteFile(target, nil, 0o644))
	require.NoError(t, os.Chmod(target, 0o644))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(target, link))
	require.NoError(t, statedir.Tighten(link))
	require.Equal(t, fs.FileMode(0o644), mode(t, target), "a link's target is not ours to change")
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "server.log")
	f, err := statedir.Create(fresh, os.O_APPEND)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Equal(t, statedir.FileMode, mode(t, fresh))

	old := filepath.Join(dir, "old.log")
	require.NoError(t, os.WriteFile(old, []byte("kept\n"), 0o644))
	require.NoError(t, os.Chmod(old, 0o644))
	f, err = statedir.Create(old, os.O_APPEND)
	require.NoError(t, err)
	_, err = f.WriteString("more\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Equal(t, statedir.FileMode, mode(t, old))
	b, err := os.ReadFile(old)
	require.NoError(t, err)
	require.Equal(t, "kept\nmore\n", string(b))
}
