package nodedir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/distributive-flow/dflow/deploy"
)

// Record is the name of the node's record in its directory.
const Record = "node.json"

// Read returns the node recorded in dir; an error that wraps
// fs.ErrNotExist when dir holds no record.
func Read(dir string) (deploy.Node, error) {
	var n deploy.Node
	path := filepath.Join(dir, Record)
	b, err := os.ReadFile(path)
	if err != nil {
		return n, err
	}
	if err := json.Unmarshal(b, &n); err != nil {
		return n, fmt.Errorf("read %s: %w", path, err)
	}
	return n, nil
}

// Write records n in dir (mode 0644), atomically.
func Write(dir string, n deploy.Node) error {
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return err
	}
	return WriteFile(filepath.Join(dir, Record), b, 0o644)
}

// Gone tells whether the node n names is gone from dir, which a Destroy
// then leaves alone: dir does not exist, or holds the record of another
// incarnation (n.ID set and different), or holds no record and n names an
// ID (an empty ID names whatever is there: what a create cut short left
// before it wrote the record, too). A record that cannot be read is not
// gone: what is there is destroyed.
func Gone(dir string, n deploy.Node) bool {
	cur, err := Read(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
			return true
		}
		return n.ID != ""
	}
	return err == nil && n.ID != "" && cur.ID != n.ID
}

// Indices are the node indices that have a directory under root (named by
// the index), sorted; none when root does not exist.
func Indices(root string) ([]int, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return []int{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node directories: %w", err)
	}
	out := []int{}
	for _, e := range entries {
		if i, err := strconv.Atoi(e.Name()); err == nil && i >= 0 && e.IsDir() {
			out = append(out, i)
		}
	}
	sort.Ints(out)
	return out, nil
}

// WriteFile writes data to path with mode perm, atomically: into a
// temporary file beside it, synced, then renamed over path.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename, there is nothing to remove
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
