package testsuite

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// RegistryBinary is the OCI registry StartRegistry runs (Debian's
// docker-registry: Docker's distribution).
const RegistryBinary = "/usr/bin/docker-registry"

// registryStartTimeout bounds how long StartRegistry waits for /v2/.
const registryStartTimeout = 20 * time.Second

// StartRegistry starts a real OCI registry for t on a free loopback port,
// plain HTTP, its storage in a fresh directory, deletes enabled, waits until
// GET /v2/ answers (200, or 401 when it asks for credentials), and returns its address "127.0.0.1:PORT" (a store
// URL is "oci+http://" + addr + "/REPO"). The registry is killed when t ends
// (and with the test process if that dies first). If RegistryBinary is
// missing, t FAILS (it does not skip) with what to run: `make deps`.
func StartRegistry(t testing.TB) (addr string) {
	t.Helper()
	return StartRegistryWith(t, RegistryOptions{})
}

// RegistryOptions change what StartRegistry starts.
type RegistryOptions struct {
	// NoDelete leaves deletes disabled, as distribution has them by default.
	NoDelete bool
	// Htpasswd is the path of an htpasswd file (bcrypt): the registry then
	// asks for basic authentication.
	Htpasswd string
}

// StartRegistryWith is StartRegistry with options.
func StartRegistryWith(t testing.TB, o RegistryOptions) (addr string) {
	t.Helper()
	if _, err := os.Stat(RegistryBinary); err != nil {
		t.Fatalf("testsuite: %s is missing, so the OCI artifact store cannot be tested against a real registry; "+
			"run `make deps` (it installs Debian's docker-registry) (%v)", RegistryBinary, err)
	}
	// The port is found by listening and closing: another process may take
	// it in between, so a registry that fails to start is retried.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr, err := startRegistry(t, o)
		if err == nil {
			return addr
		}
		lastErr = err
	}
	t.Fatalf("testsuite: start registry: %v", lastErr)
	return ""
}

func startRegistry(t testing.TB, o RegistryOptions) (string, error) {
	dir := t.TempDir()
	addr := FreeAddr(t)
	// A secret of its own: with none, distribution makes a random one and
	// warns; and /v2/ tells this registry from another test's on a raced port
	// only through the header below.
	secret := fmt.Sprintf("dflow-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: %t
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
  headers:
    X-Dflow-Test: [%s]
`, filepath.Join(dir, "data"), !o.NoDelete, addr, secret, secret)
	if o.Htpasswd != "" {
		config += fmt.Sprintf("auth:\n  htpasswd:\n    realm: dflow-test\n    path: %s\n", o.Htpasswd)
	}
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return "", err
	}
	logPath := filepath.Join(dir, "registry.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logFile.Close()
	cmd := exec.Command(RegistryBinary, "serve", configPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("run %s: %w", RegistryBinary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	logTail := func() string {
		b, _ := os.ReadFile(logPath)
		if len(b) > 4096 {
			b = b[len(b)-4096:]
		}
		return string(bytes.TrimSpace(b))
	}
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(registryStartTimeout)
	for {
		select {
		case err := <-exited:
			exited <- err
			return "", fmt.Errorf("%s exited before /v2/ answered (%v); its log ends:\n%s", RegistryBinary, err, logTail())
		default:
		}
		if resp, err := hc.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.Header.Get("X-Dflow-Test") != secret {
				stop()
				return "", fmt.Errorf("another server answers on %s (a port race)", addr)
			}
			if resp.StatusCode == http.StatusOK || o.Htpasswd != "" && resp.StatusCode == http.StatusUnauthorized {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("%s on %s: /v2/ did not answer 200 within %s; its log ends:\n%s", RegistryBinary, addr, registryStartTimeout, logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(stop)
	return addr, nil
}
