package srcwatch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSkipped(t *testing.T) {
	for _, c := range []struct {
		path string
		want bool
	}{
		{"/p/src/Main.hs", false},
		{"/p/app.cabal", false},
		{"/p/.git/index", true},
		{"/p/dist-newstyle/build/x.o", true},
		{"/p/.dflow/store.db", true},
		{"/p/src/.stack-work/x", true},
		{"/p/src/Main.hs~", true},
		{"/p/src/.#Main.hs", true},
		{"/p/src/.Main.hs.swp", true},
		{"/elsewhere/x", false},
	} {
		require.Equal(t, c.want, Skipped("/p", c.path), c.path)
	}
}

// TestRunReportsOnceAfterQuiet writes a burst of changes (one in a
// directory created after the watch began, one in a skipped directory) and
// expects one report, after the debounce, naming the last counted change.
func TestRunReportsOnceAfterQuiet(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, ".git"), 0o755))
	w, err := New(root)
	require.NoError(t, err)
	defer w.Close()
	require.Equal(t, 1, w.Dirs())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan string, 10)
	go w.Run(ctx, 200*time.Millisecond, func(rel string) { got <- rel }, func(err error) { t.Error(err) })

	require.NoError(t, os.WriteFile(filepath.Join(root, "a.hs"), []byte("a"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(root, "src"), 0o755))
	time.Sleep(50 * time.Millisecond) // the new directory is being added
	require.NoError(t, os.WriteFile(filepath.Join(root, "src", "B.hs"), []byte("b"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, ".git", "index"), []byte("x"), 0o644))
	select {
	case rel := <-got:
		require.Equal(t, filepath.Join("src", "B.hs"), rel)
	case <-time.After(5 * time.Second):
		t.Fatal("no report within 5s")
	}
	select {
	case rel := <-got:
		t.Fatalf("a second report for one burst: %s", rel)
	case <-time.After(500 * time.Millisecond):
	}
}
