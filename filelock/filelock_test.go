package filelock_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/filelock"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	if p := os.Getenv("FILELOCK_HOLD"); p != "" {
		f, err := filelock.TryLock(p, time.Second)
		if err != nil {
			os.Exit(2)
		}
		defer f.Close()
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute)
		return
	}
	os.Exit(m.Run())
}

func TestLockLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	require.False(t, filelock.Held(path), "no file: nobody holds it")

	// Another process holds it; when that process is killed, the lock goes.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FILELOCK_HOLD="+path)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	buf := make([]byte, 7)
	_, err = out.Read(buf)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(buf), "locked"))
	require.True(t, filelock.Held(path))
	_, err = filelock.TryLock(path, 50*time.Millisecond)
	require.ErrorIs(t, err, filelock.ErrHeld)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	require.False(t, filelock.Held(path), "a killed owner's lock is gone")

	f, err := filelock.TryLock(path, 0)
	require.NoError(t, err)
	require.True(t, filelock.Held(path))
	require.NoError(t, f.Close())
	require.False(t, filelock.Held(path))
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	require.NoError(t, os.WriteFile(path, []byte("a\nb\nc\nd\n"), 0o644))
	require.Equal(t, "c\nd", filelock.Tail(path, 2))
	require.Equal(t, "a\nb\nc\nd", filelock.Tail(path, 10))
	require.Equal(t, "", filelock.Tail(filepath.Join(t.TempDir(), "none"), 3))
}
