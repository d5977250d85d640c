package vagrant

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/distributive-flow/dflow/filelock"
)

// The loopback address registry is the local backend's (same directory, lock
// and claim format), so local and vagrant nodes of any project on this
// machine never share an address.

type claim struct {
	Project string `json:"project"`
	Index   int    `json:"index"`
}

// claimAddress returns the address of (project, index) in the registry
// under machineDir, claiming the lowest free one (preferring 127.0.0.<index+2>)
// the first time.
func claimAddress(machineDir, project string, index int) (string, error) {
	dir := filepath.Join(machineDir, "loopback")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("address registry %s: %w", dir, err)
	}
	lock, err := filelock.Lock(filepath.Join(machineDir, "loopback.lock"))
	if err != nil {
		return "", fmt.Errorf("address registry: %w", err)
	}
	defer lock.Close()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("address registry %s: %w", dir, err)
	}
	taken := map[string]bool{}
	for _, e := range entries {
		taken[e.Name()] = true
		var c claim
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || json.Unmarshal(b, &c) != nil {
			continue // unreadable: taken
		}
		if c.Project == project && c.Index == index {
			return e.Name(), nil
		}
		if _, err := os.Stat(filepath.Join(c.Project, ".dflow")); errors.Is(err, os.ErrNotExist) {
			if os.Remove(filepath.Join(dir, e.Name())) == nil {
				delete(taken, e.Name())
			}
		}
	}
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
		b, _ := json.Marshal(claim{Project: project, Index: index})
		if err := os.WriteFile(filepath.Join(dir, ip), b, 0o644); err != nil {
			return "", fmt.Errorf("claim address %s: %w", ip, err)
		}
		return ip, nil
	}
	return "", errors.New("no free loopback address left in 127.0.0.0/8")
}
