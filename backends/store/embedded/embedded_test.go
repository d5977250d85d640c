package embedded_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/store/embedded"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// TestMain doubles as a second writer process (DFLOW_TEST_WRITER=path).
func TestMain(m *testing.M) {
	if path := os.Getenv("DFLOW_TEST_WRITER"); path != "" {
		s, err := embedded.Open(path)
		if err == nil {
			for i := 0; i < 50 && err == nil; i++ {
				err = testsuite.Increment(context.Background(), s)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func open(t *testing.T, path string) backends.Store {
	s, err := embedded.Open(path)
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	paths := map[backends.Store]string{}
	testsuite.StoreSuite(t,
		func(t *testing.T) backends.Store {
			p := filepath.Join(t.TempDir(), "store.db")
			s := open(t, p)
			paths[s] = p
			return s
		},
		func(t *testing.T, s backends.Store) backends.Store { return open(t, paths[s]) })
}

// TestTwoProcesses: another process and this one each increment 50 times.
func TestTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DFLOW_TEST_WRITER="+path)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	for i := 0; i < 50; i++ {
		require.NoError(t, testsuite.Increment(context.Background(), s))
	}
	buf := make([]byte, 4096)
	n, _ := out.Read(buf)
	require.NoError(t, cmd.Wait(), string(buf[:n]))
	st, err := s.Load(context.Background())
	require.NoError(t, err)
	require.Equal(t, 100, st.Count)
}

func TestCorruptFileIsAClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	require.NoError(t, os.WriteFile(path, []byte("this is not a bbolt file at all, not even close........"), 0o644))
	_, err := embedded.Open(path)
	require.ErrorContains(t, err, path)
}

// TestFileMode checks that a new store file is 0600 and that one an older
// dflow made 0644 is tightened when it is opened, keeping its state.
func TestFileMode(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path)
	require.NoError(t, testsuite.Increment(ctx, s))
	requireMode(t, path, 0o600)

	require.NoError(t, os.Chmod(path, 0o644))
	s = open(t, path)
	requireMode(t, path, 0o600)
	st, err := s.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Count, "the state is kept")
}

func requireMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, want, fi.Mode().Perm(), path)
}
