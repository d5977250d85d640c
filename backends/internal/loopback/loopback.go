package loopback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/distributive-flow/dflow/filelock"
)

// MachineDir is where dflow keeps machine-wide state: $DFLOW_MACHINE_DIR,
// else $XDG_STATE_HOME/dflow, else ~/.local/state/dflow.
func MachineDir() string {
	if d := os.Getenv("DFLOW_MACHINE_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "dflow")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), fmt.Sprintf("dflow-%d", os.Getuid()))
	}
	return filepath.Join(home, ".local", "state", "dflow")
}

type claim struct {
	Project string `json:"project"` // absolute project root
	Index   int    `json:"index"`
}

// Claim returns the loopback address of node index of project from the
// machine-wide registry under machineDir, claiming the lowest free one the
// first time (the one that mirrors the index, 127.0.0.<index+2>, when it is
// free). Every backend whose nodes live on loopback addresses claims them
// here, so no two nodes of any project ever share one.
func Claim(machineDir, project string, index int) (string, error) {
	addr, _, err := registry{dir: machineDir}.claim(project, index)
	return addr, err
}

// ClaimNew is Claim that also tells whether this call made the claim
// (fresh) rather than found it: a create that fails gives a fresh claim
// back with Release, and keeps one it found.
func ClaimNew(machineDir, project string, index int) (addr string, fresh bool, err error) {
	return registry{dir: machineDir}.claim(project, index)
}

// Release gives back the address of (project, index), if it holds one.
func Release(machineDir, project string, index int) error {
	return registry{dir: machineDir}.release(project, index)
}

// registry hands out loopback addresses, one per (project, index).
type registry struct{ dir string }

// release removes the claim of (project, index), if any.
func (r registry) release(project string, index int) error {
	dir := filepath.Join(r.dir, "loopback")
	lock, err := filelock.Lock(filepath.Join(r.dir, "loopback.lock"))
	if err != nil {
		return fmt.Errorf("address registry: %w", err)
	}
	defer lock.Close()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("address registry %s: %w", dir, err)
	}
	for _, e := range entries {
		c, err := readClaim(filepath.Join(dir, e.Name()))
		if err == nil && c.Project == project && c.Index == index {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("release address %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// claim returns the address of (project, index), claiming the lowest free
// one the first time (fresh).
func (r registry) claim(project string, index int) (string, bool, error) {
	dir := filepath.Join(r.dir, "loopback")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, fmt.Errorf("address registry %s: %w", dir, err)
	}
	lock, err := filelock.Lock(filepath.Join(r.dir, "loopback.lock"))
	if err != nil {
		return "", false, fmt.Errorf("address registry: %w", err)
	}
	defer lock.Close()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", false, fmt.Errorf("address registry %s: %w", dir, err)
	}
	taken := map[string]bool{}
	for _, e := range entries {
		c, err := readClaim(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // unreadable: treat as taken, never hand it out twice
		}
		if c.Project == project && c.Index == index {
			return e.Name(), false, nil
		}
		taken[e.Name()] = true
		if stale(c) {
			if os.Remove(filepath.Join(dir, e.Name())) == nil {
				delete(taken, e.Name())
			}
		}
	}
	// Try the address that mirrors the index first (node 0 at 127.0.0.2,
	// node 1 at .3, ...), so one project's addresses read in index order,
	// then the lowest free one.
	preferred := uint32(index) + 2
	for i := uint32(0); i < 1<<24; i++ {
		n := i
		if i == 0 {
			n = preferred
		} else if i == preferred {
			continue
		}
		ip := net.IPv4(127, byte(n>>16), byte(n>>8), byte(n)).String()
		if n < 2 || n >= 1<<24-1 || byte(n) == 0 || byte(n) == 255 || taken[ip] {
			continue
		}
		// Skip taken entries that failed to parse, too: they exist on disk.
		if _, err := os.Stat(filepath.Join(dir, ip)); err == nil {
			continue
		}
		b, _ := json.Marshal(claim{Project: project, Index: index})
		if err := os.WriteFile(filepath.Join(dir, ip), b, 0o644); err != nil {
			return "", false, fmt.Errorf("claim address %s: %w", ip, err)
		}
		return ip, true, nil
	}
	return "", false, errors.New("no free loopback address left in 127.0.0.0/8")
}

func readClaim(path string) (claim, error) {
	var c claim
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(b, &c)
}

// stale tells whether a claim's project is gone.
func stale(c claim) bool {
	_, err := os.Stat(filepath.Join(c.Project, ".dflow"))
	return errors.Is(err, os.ErrNotExist)
}

// CreateOnClaim is a VM backend's Create on a claimed loopback address: it
// claims index's address (ClaimNew), runs create with it, and when create
// fails undoes what it made, on a context of its own (ctx may have ended)
// bounded by undoTimeout: destroy, when create set made, and the claim,
// when this call made it. A failed undo is joined to create's error.
func CreateOnClaim[N any](ctx context.Context, machineDir, project string, index int, undoTimeout time.Duration,
	create func(ctx context.Context, addr string, made *bool) (N, error), destroy func(ctx context.Context) error) (N, error) {
	var zero N
	addr, fresh, err := ClaimNew(machineDir, project, index)
	if err != nil {
		return zero, fmt.Errorf("create node %d: %w", index, err)
	}
	made := false
	n, err := create(ctx, addr, &made)
	if err == nil {
		return n, nil
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	var undo []error
	if made {
		undo = append(undo, destroy(uctx))
	}
	if fresh {
		undo = append(undo, Release(machineDir, project, index))
	}
	if uerr := errors.Join(undo...); uerr != nil {
		err = errors.Join(err, fmt.Errorf("and removing what it made failed too: %w", uerr))
	}
	return zero, fmt.Errorf("create node %d: %w", index, err)
}
