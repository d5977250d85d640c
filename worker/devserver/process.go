package devserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/distributive-flow/dflow/filelock"
	"github.com/distributive-flow/dflow/statedir"
)

// Info is what a running control plane records in <dir>/server.json.
type Info struct {
	PID      int    `json:"pid"`
	Frontend string `json:"frontend"` // host:port of the Temporal frontend, on 127.0.0.1
	// ExposedFrontend is where the frontend is also served (temporal.frontend),
	// "" when it is on loopback only.
	ExposedFrontend string    `json:"exposed_frontend,omitempty"`
	UI              string    `json:"ui"` // Web UI base URL, "" when disabled
	Namespace       string    `json:"namespace"`
	Started         time.Time `json:"started"`
	Version         string    `json:"version"`
}

// Warnings says, one line each, what this control plane serves beyond
// loopback and what whoever reaches it can do: none when the Web UI and
// the frontend are on loopback only.
func (i Info) Warnings() []string {
	var w []string
	if i.UI != "" {
		if u, err := url.Parse(i.UI); err == nil && !IsLoopback(u.Hostname()) {
			w = append(w, fmt.Sprintf("the Temporal Web UI listens on %s, beyond loopback: whoever reaches it can read every workflow's history and terminate and reset workflows (it has no authentication); set temporal.ui to 127.0.0.1:PORT unless that is meant", u.Host))
		}
	}
	if i.ExposedFrontend != "" {
		if host, _, err := net.SplitHostPort(i.ExposedFrontend); err != nil || !IsLoopback(host) {
			w = append(w, fmt.Sprintf("the Temporal frontend is exposed on %s (temporal.frontend): whoever reaches it can start, signal, reset and terminate any workflow (it has no authentication)", i.ExposedFrontend))
		}
	}
	return w
}

// IsLoopback tells whether host (an IP address or "localhost") can only be
// reached from this machine.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// WorkflowURL is the Web UI page of one workflow run ("" without a UI).
func (i Info) WorkflowURL(workflowID, runID string) string {
	if i.UI == "" {
		return ""
	}
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", i.UI, i.Namespace, workflowID, runID)
}

func infoPath(dir string) string { return filepath.Join(dir, "server.json") }

// LogPath is where a background control plane writes its output.
func LogPath(dir string) string { return filepath.Join(dir, "server.log") }

// WriteInfo records i atomically (temp file, fsync, rename).
func WriteInfo(dir string, i Info) error {
	b, err := json.MarshalIndent(i, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(infoPath(dir), b)
}

// RemoveInfo deletes the record, e.g. on a clean stop.
func RemoveInfo(dir string) { _ = os.Remove(infoPath(dir)) }

func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Status reports the control plane owning dir: its Info and true when one
// runs (it holds the database lock and has recorded where it listens).
func Status(dir string) (Info, bool, error) {
	if !filelock.Held(lockPath(dir)) {
		return Info{}, false, nil
	}
	b, err := os.ReadFile(infoPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return Info{}, false, nil // starting up: lock taken, address not yet recorded
	}
	if err != nil {
		return Info{}, false, fmt.Errorf("read %s: %w", infoPath(dir), err)
	}
	var i Info
	if err := json.Unmarshal(b, &i); err != nil {
		return Info{}, false, fmt.Errorf("read %s: %w", infoPath(dir), err)
	}
	if i.PID <= 0 || syscall.Kill(i.PID, 0) != nil {
		return Info{}, false, nil
	}
	return i, true, nil
}

// StartBackground makes sure a control plane runs for dir: if none does, it
// starts argv (which must run one in the foreground, e.g. `dflow server run`)
// detached from the caller, with its output appended to LogPath(dir), and
// waits until it is ready. started tells whether this call started it.
func StartBackground(ctx context.Context, dir string, argv []string) (info Info, started bool, err error) {
	// A port found free may be taken by another process before the server
	// binds it (two projects starting at once): then start again, and the
	// server picks again.
	for attempt := 0; ; attempt++ {
		info, started, err = startBackground(ctx, dir, argv)
		if err == nil || attempt == 2 || !strings.Contains(err.Error(), "address already in use") {
			return info, started, err
		}
	}
}

func startBackground(ctx context.Context, dir string, argv []string) (info Info, started bool, err error) {
	if err := statedir.Ensure(dir); err != nil {
		return Info{}, false, err
	}
	if i, ok, err := Status(dir); err != nil || ok {
		return i, false, err
	}
	logf, err := statedir.Create(LogPath(dir), os.O_APPEND)
	if err != nil {
		return Info{}, false, err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Info{}, false, fmt.Errorf("start control plane %q: %w", strings.Join(argv, " "), err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	for {
		if i, ok, _ := Status(dir); ok {
			return i, i.PID == cmd.Process.Pid, nil
		}
		select {
		case err := <-exited:
			// Another process may have won the race for the lock: use it.
			if i, ok, _ := waitStatus(ctx, dir, 5*time.Second); ok {
				return i, false, nil
			}
			return Info{}, false, fmt.Errorf("control plane exited (%v); last lines of %s:\n%s", err, LogPath(dir), filelock.Tail(LogPath(dir), 15))
		case <-ctx.Done():
			return Info{}, false, fmt.Errorf("control plane did not become ready: %w; last lines of %s:\n%s", ctx.Err(), LogPath(dir), filelock.Tail(LogPath(dir), 15))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func waitStatus(ctx context.Context, dir string, d time.Duration) (Info, bool, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if i, ok, err := Status(dir); ok || err != nil {
			return i, ok, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return Info{}, false, nil
}

// StopBackground stops the control plane owning dir: SIGTERM, then SIGKILL
// after grace. It reports whether one was running.
func StopBackground(dir string, grace time.Duration) (bool, error) {
	i, ok, err := Status(dir)
	if err != nil || !ok {
		return false, err
	}
	if err := syscall.Kill(i.PID, syscall.SIGTERM); err != nil {
		return true, fmt.Errorf("stop control plane pid %d: %w", i.PID, err)
	}
	lock := lockPath(dir)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !filelock.Held(lock) {
			RemoveInfo(dir)
			return true, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(i.PID, syscall.SIGKILL)
	for j := 0; j < 100 && filelock.Held(lock); j++ {
		time.Sleep(50 * time.Millisecond)
	}
	RemoveInfo(dir)
	return true, nil
}
