package testsuite

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHDPath is where Debian's openssh-server puts the SSH daemon.
const SSHDPath = "/usr/sbin/sshd"

// RequireSSHD skips the test, loudly, unless a real OpenSSH server can be
// started here: /usr/sbin/sshd exists and the test runs as root.
func RequireSSHD(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(SSHDPath); err != nil {
		msg := fmt.Sprintf("SKIPPED: %s is missing, so the ssh backend is NOT tested against a real sshd: install Debian's openssh-server (`make deps` does)", SSHDPath)
		fmt.Fprintln(os.Stderr, "!!! "+msg)
		t.Skip(msg)
	}
	if os.Geteuid() != 0 {
		msg := "SKIPPED: the sshd tests start sshd as root (they log in as root); run them as root"
		fmt.Fprintln(os.Stderr, "!!! "+msg)
		t.Skip(msg)
	}
}

// SSHD is a real OpenSSH server a test started.
type SSHD struct {
	Addr    string // the IP it listens on
	Port    int
	HostKey ssh.PublicKey
	// AuthorizedKeys is the file of keys that may log in (as any user).
	AuthorizedKeys string
	log            *SyncBuffer
}

// HostPort is Addr:Port.
func (s SSHD) HostPort() string { return net.JoinHostPort(s.Addr, strconv.Itoa(s.Port)) }

// KnownHostsLine is the known_hosts line for this server's key.
func (s SSHD) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.HostPort())}, s.HostKey)
}

// Log is what sshd logged so far.
func (s SSHD) Log() string { return s.log.String() }

// StartSSHD starts `sshd -D` on ip (any 127.0.0.0/8 address works on Linux)
// and a free port, with a fresh host key, letting the keys in
// authorizedKeys log in; the test's cleanup stops it. Call RequireSSHD
// first.
func StartSSHD(t *testing.T, ip, authorizedKeys string) SSHD {
	t.Helper()
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "test host key")
	require.NoError(t, err)
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	require.NoError(t, os.WriteFile(hostKey, pem.EncodeToMemory(block), 0o600))
	signer, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	ak := filepath.Join(dir, "authorized_keys")
	require.NoError(t, os.WriteFile(ak, []byte(authorizedKeys), 0o600))
	// sshd needs its privilege separation directory.
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755))

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := FreePort(t, ip)
		cfg := filepath.Join(dir, "sshd_config")
		require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`Port %d
ListenAddress %s
HostKey %s
AuthorizedKeysFile %s
PidFile none
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
MaxStartups 100
MaxSessions 100
LogLevel VERBOSE
`, port, ip, hostKey, ak)), 0o600))
		log := &SyncBuffer{}
		cmd := exec.Command(SSHDPath, "-D", "-e", "-f", cfg)
		cmd.Stdout, cmd.Stderr = log, log
		require.NoError(t, cmd.Start())
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		s := SSHD{Addr: ip, Port: port, HostKey: signer.PublicKey(), AuthorizedKeys: ak, log: log}
		if lastErr = waitBanner(s.HostPort(), exited); lastErr == nil {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			return s
		}
		_ = cmd.Process.Kill()
		<-exited
		lastErr = fmt.Errorf("%w; sshd said:\n%s", lastErr, log.String())
	}
	require.NoError(t, lastErr, "start sshd on %s", ip)
	return SSHD{}
}

// waitBanner waits until addr greets with an SSH banner.
func waitBanner(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("sshd on %s exited", addr)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 4)
			_, err = c.Read(buf)
			c.Close()
			if err == nil && string(buf) == "SSH-" {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("sshd on %s did not answer within 10s", addr)
}
