package statedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

const (
	// DirMode is the mode of a state directory.
	DirMode fs.FileMode = 0o700
	// FileMode is the mode of a state file (databases, keys, secrets,
	// records, logs).
	FileMode fs.FileMode = 0o600
)

// Ensure makes dir a private state directory: it creates it (and missing
// parents) with mode 0700, or takes group and other permissions away from
// one that exists. A path that exists but is not a directory is an error.
func Ensure(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("create state directory %s: %w", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("state directory %s: not a directory", dir)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, perm&^0o077); err != nil {
			return fmt.Errorf("tighten state directory %s to %#o: %w", dir, perm&^0o077, err)
		}
	}
	return nil
}

// Tighten takes group and other permissions away from each of paths that
// exists (0644 becomes 0600); a missing path is skipped. It follows no
// symbolic link: a link is left alone, as its mode means nothing.
func Tighten(paths ...string) error {
	for _, p := range paths {
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("tighten %s: %w", p, err)
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			continue
		}
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(p, perm&^0o077); err != nil {
				return fmt.Errorf("tighten %s to %#o: %w", p, perm&^0o077, err)
			}
		}
	}
	return nil
}

// Create opens path for writing, creating it with mode 0600 when missing
// and tightening it when it exists (flag is added to O_WRONLY|O_CREATE, e.g.
// os.O_APPEND or os.O_TRUNC).
func Create(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|flag, FileMode)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	st, err := f.Stat()
	if err == nil && st.Mode().Perm()&0o077 != 0 {
		err = f.Chmod(st.Mode().Perm() &^ 0o077)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("tighten %s: %w", path, err)
	}
	return f, nil
}
