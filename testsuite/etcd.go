package testsuite

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EtcdBinary is the etcd server StartEtcd runs (Debian's etcd-server).
const EtcdBinary = "/usr/bin/etcd"

// etcdStartTimeout bounds how long StartEtcd waits for a healthy server.
const etcdStartTimeout = 20 * time.Second

// StartEtcd starts a real, single-member etcd server for t on free loopback
// ports with a fresh data directory, waits until it reports healthy, and
// returns its client endpoint as "127.0.0.1:PORT". The server is killed and
// its data removed when t ends (and killed with the test process if that
// dies first). If EtcdBinary is missing, t is skipped loudly; nothing else is
// a reason to skip: a server that does not come up fails t with its log.
func StartEtcd(t testing.TB) (endpoint string) {
	t.Helper()
	if _, err := os.Stat(EtcdBinary); err != nil {
		t.Skipf("SKIPPED: %s is missing, so this test cannot run against a real etcd; "+
			"install it: apt-get install etcd-server (%v)", EtcdBinary, err)
	}
	// Two free ports are found by listening and closing: another process may
	// take one in between, so a server that fails to start is retried.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		endpoint, err := startEtcd(t)
		if err == nil {
			return endpoint
		}
		lastErr = err
	}
	t.Fatalf("testsuite: start etcd: %v", lastErr)
	return ""
}

func startEtcd(t testing.TB) (string, error) {
	clientPort, peerPort := FreePort(t), FreePort(t)
	for peerPort == clientPort {
		peerPort = FreePort(t)
	}
	dir := t.TempDir()
	client := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	logPath := filepath.Join(dir, "etcd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logFile.Close()
	// A name of its own: the health check must know it talks to this
	// server, not to another test's that took the port first.
	name := fmt.Sprintf("dflow-test-%d-%d-%d", os.Getpid(), clientPort, time.Now().UnixNano()%1e9)
	cmd := exec.Command(EtcdBinary,
		"--name="+name,
		"--data-dir="+filepath.Join(dir, "data"),
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster="+name+"="+peer,
		"--initial-cluster-state=new",
		"--logger=zap", "--log-outputs=stderr",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("run %s: %w", EtcdBinary, err)
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
	deadline := time.Now().Add(etcdStartTimeout)
	for {
		select {
		case err := <-exited:
			exited <- err
			return "", fmt.Errorf("%s exited before it was healthy (%v); its log ends:\n%s", EtcdBinary, err, logTail())
		default:
		}
		if healthy(hc, client) {
			if !isMember(hc, client, name) {
				stop()
				return "", fmt.Errorf("another etcd answers on %s (a port race)", client)
			}
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("%s on %s not healthy within %s; its log ends:\n%s", EtcdBinary, client, etcdStartTimeout, logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ep := strings.TrimPrefix(client, "http://")
	etcdPIDs.Store(ep, cmd.Process.Pid)
	t.Cleanup(func() {
		etcdPIDs.Delete(ep)
		stop()
	})
	return ep, nil
}

// etcdPIDs are the processes of the etcd servers StartEtcd runs, by endpoint.
var etcdPIDs sync.Map

// EtcdPID is the process id of the etcd StartEtcd started at endpoint (0
// if none), for tests that stop or freeze the server.
func EtcdPID(endpoint string) int {
	if pid, ok := etcdPIDs.Load(endpoint); ok {
		return pid.(int)
	}
	return 0
}

// healthy reports whether the etcd at base answers /health with
// {"health":"true"}.
func healthy(hc *http.Client, base string) bool {
	resp, err := hc.Get(base + "/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode == http.StatusOK && bytes.Contains(bytes.ReplaceAll(b, []byte(" "), nil), []byte(`"health":"true"`))
}

// isMember tells whether the etcd at base is the member called name.
func isMember(hc *http.Client, base, name string) bool {
	resp, err := hc.Post(base+"/v3/cluster/member/list", "application/json", strings.NewReader("{}"))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`"name":"`+name+`"`))
}
