package ssh_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent"
	sshvm "github.com/distributive-flow/dflow/backends/vm/ssh"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// TestMain doubles as the node agent: the backend uploads this test binary
// and starts it with DFLOW_TEST_AGENT=1 instead of `dflow agent`.
func TestMain(m *testing.M) {
	testsuite.ServeAgentIfAsked()
	os.Exit(m.Run())
}

func authorized(s ssh.Signer) string { return string(ssh.MarshalAuthorizedKey(s.PublicKey())) }

// Every cluster gets fresh loopback addresses in a range of this process's
// own (127.<pid-derived>.<n>.<m>), away from the local backend's 127.0.0.x.
var nextIP atomic.Int32

func loopbackIP() string {
	n := nextIP.Add(1)
	return fmt.Sprintf("127.%d.%d.%d", 100+os.Getpid()%100, n/250, n%250+1)
}

// cluster is an ssh backend over hosts that are real sshd servers on this
// machine, each on a loopback address of its own.
type cluster struct {
	b      *sshvm.Backend
	o      sshvm.Options
	sshds  []testsuite.SSHD
	keys   string // authorized_keys for the agents
	remote string // RemoteDir (the same directory for every "host": they share this machine)
}

type setup struct {
	hosts      int
	knownHosts func(sshds []testsuite.SSHD) string // known_hosts content; default: every host's key
	acceptNew  bool
	login      ssh.Signer // default: the agent signer
}

func open(t *testing.T, s setup) *cluster {
	testsuite.RequireSSHD(t)
	signer := testsuite.NewSigner(t)
	login := s.login
	if login == nil {
		login = signer
	}
	c := &cluster{keys: authorized(signer), remote: t.TempDir()}
	var ips []string
	for i := 0; i < s.hosts; i++ {
		ip := loopbackIP()
		ips = append(ips, ip)
		c.sshds = append(c.sshds, testsuite.StartSSHD(t, ip, authorized(signer)))
	}
	kh := ""
	if s.knownHosts != nil {
		kh = s.knownHosts(c.sshds)
	} else {
		for _, d := range c.sshds {
			kh += d.KnownHostsLine() + "\n"
		}
	}
	khFile := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(khFile, []byte(kh), 0o600))
	var entries []string
	for _, d := range c.sshds {
		entries = append(entries, "root@"+d.HostPort())
	}
	hosts, err := sshvm.ParseHosts(entries, "root")
	require.NoError(t, err)
	c.o = sshvm.Options{
		Hosts:             hosts,
		Login:             login,
		Signer:            signer,
		KnownHosts:        khFile,
		AcceptNewHostKeys: s.acceptNew,
		AgentPort:         testsuite.FreePort(t, ips...),
		RemoteDir:         c.remote,
		Binary:            os.Args[0],
		AgentCommand:      []string{"env", "DFLOW_TEST_AGENT=1", sshvm.BinaryToken},
		ConnectTimeout:    5 * time.Second,
	}
	c.b, err = sshvm.New(c.o)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for i := range c.sshds {
			_ = c.b.Destroy(ctx, deploy.Node{Index: i})
		}
		// Whatever survived (a test that failed half way): kill -9.
		for i := range c.sshds {
			c.killAgent(i)
		}
	})
	return c
}

// killAgent kills node index's agent with SIGKILL behind the backend's
// back: the hosts are this machine, so the node directory is local.
func (c *cluster) killAgent(index int) bool {
	dir := filepath.Join(c.remote, strconv.Itoa(index))
	b, err := os.ReadFile(agent.PIDPath(dir))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return false
	}
	return syscall.Kill(pid, syscall.SIGKILL) == nil
}

func TestConformance(t *testing.T) {
	testsuite.VMSuite(t, func(t *testing.T) testsuite.VMHarness {
		c := open(t, setup{hosts: 3})
		return testsuite.VMHarness{Backend: c.b, Keys: c.keys, Kill: func(t *testing.T, n deploy.Node) {
			require.True(t, c.killAgent(n.Index), "kill node %d's agent", n.Index)
			require.Eventually(t, func() bool { return !agent.Running(filepath.Join(c.remote, strconv.Itoa(n.Index))) }, 5*time.Second, 10*time.Millisecond)
		},
			// The hosts are this machine: the node directory is local.
			Remains: func(t *testing.T, index int) []string {
				dir := filepath.Join(c.remote, strconv.Itoa(index))
				if _, err := os.Stat(dir); err == nil {
					return []string{dir}
				}
				return nil
			},
			Images: [2]string{"image-a", "image-b"},
		}
	})
}

// TestCreateUploadsOnceAndReports measures a node's creation: the first
// uploads the executable, later ones find it by its sha256.
func TestCreateUploadsOnceAndReports(t *testing.T) {
	c := open(t, setup{hosts: 2})
	ctx := context.Background()
	fi, err := os.Stat(os.Args[0])
	require.NoError(t, err)
	start := time.Now()
	n0, err := c.b.Create(ctx, deploy.NodeSpec{Index: 0, Keys: c.keys})
	require.NoError(t, err)
	first := time.Since(start)
	bins, err := filepath.Glob(filepath.Join(c.remote, "bin", "dflow-*"))
	require.NoError(t, err)
	require.Len(t, bins, 1)
	st, err := os.Stat(bins[0])
	require.NoError(t, err)
	mtime := st.ModTime()

	start = time.Now()
	_, err = c.b.Create(ctx, deploy.NodeSpec{Index: 1, Keys: c.keys})
	require.NoError(t, err)
	second := time.Since(start)
	st, err = os.Stat(bins[0])
	require.NoError(t, err)
	require.Equal(t, mtime, st.ModTime(), "an executable with the right sha256 is not uploaded again")

	start = time.Now()
	again, err := c.b.Create(ctx, deploy.NodeSpec{Index: 0, Keys: c.keys})
	require.NoError(t, err)
	require.Equal(t, n0, again)
	existing := time.Since(start)
	t.Logf("create over ssh: first node (uploads %d MB) %s, second node (executable cached) %s, create of a running node %s",
		fi.Size()>>20, first.Round(time.Millisecond), second.Round(time.Millisecond), existing.Round(time.Millisecond))

	// The agent runs with the keys of the spec and in its own session.
	dir := filepath.Join(c.remote, "0")
	keys, err := os.ReadFile(filepath.Join(dir, "authorized_keys"))
	require.NoError(t, err)
	require.Equal(t, c.keys, string(keys))
	pid := testsuite.AgentPID(t, dir)
	sid, err := getsid(pid)
	require.NoError(t, err)
	require.Equal(t, pid, sid, "the agent leads its own session")
}

func getsid(pid int) (int, error) {
	sid, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, uintptr(pid), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(sid), nil
}

func TestUnknownHostKeyIsRefused(t *testing.T) {
	c := open(t, setup{hosts: 1, knownHosts: func([]testsuite.SSHD) string { return "" }})
	_, err := c.b.Create(context.Background(), deploy.NodeSpec{Index: 0, Keys: c.keys})
	require.ErrorIs(t, err, sshvm.ErrUnknownHostKey)
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{
		"create node 0", "ssh root@" + c.sshds[0].HostPort(), ssh.FingerprintSHA256(c.sshds[0].HostKey),
		c.o.KnownHosts, "ssh-keyscan -p " + strconv.Itoa(c.sshds[0].Port) + " " + c.sshds[0].Addr, "nodes.host_key_check: accept-new",
	} {
		require.Contains(t, msg, want)
	}
	// The advice works.
	nodes, err := c.b.List(context.Background())
	require.NoError(t, err)
	require.Empty(t, nodes, "an unverifiable host lists nothing")
}

func TestChangedHostKeyIsRefused(t *testing.T) {
	other := testsuite.NewSigner(t)
	c := open(t, setup{hosts: 1, acceptNew: true, knownHosts: func(s []testsuite.SSHD) string {
		return testsuite.SSHD{Addr: s[0].Addr, Port: s[0].Port, HostKey: other.PublicKey()}.KnownHostsLine() + "\n"
	}})
	_, err := c.b.Create(context.Background(), deploy.NodeSpec{Index: 0, Keys: c.keys})
	require.ErrorIs(t, err, sshvm.ErrHostKeyChanged, "accept-new never accepts a changed key")
	require.ErrorContains(t, err, "HOST KEY CHANGED")
	require.ErrorContains(t, err, "ssh-keygen -R")
	t.Log(err)
}

func TestAcceptNewRecordsTheKey(t *testing.T) {
	c := open(t, setup{hosts: 1, acceptNew: true, knownHosts: func([]testsuite.SSHD) string { return "" }})
	require.NoError(t, os.Remove(c.o.KnownHosts), "a missing known_hosts is created")
	n, err := c.b.Create(context.Background(), deploy.NodeSpec{Index: 0, Keys: c.keys})
	require.NoError(t, err)
	kh, err := os.ReadFile(c.o.KnownHosts)
	require.NoError(t, err)
	require.Equal(t, c.sshds[0].KnownHostsLine()+"\n", string(kh))
	// And strict checking now knows the host.
	o := c.o
	o.AcceptNewHostKeys = false
	strict, err := sshvm.New(o)
	require.NoError(t, err)
	nodes, err := strict.List(context.Background())
	require.NoError(t, err)
	require.Equal(t, []deploy.Node{n}, nodes)
}

func TestWrongLoginKeyIsRefused(t *testing.T) {
	c := open(t, setup{hosts: 1, login: testsuite.NewSigner(t)})
	_, err := c.b.Create(context.Background(), deploy.NodeSpec{Index: 0, Keys: c.keys})
	require.Error(t, err)
	t.Log(err)
	require.ErrorContains(t, err, "ssh root@"+c.sshds[0].HostPort()+": connect: login as root with key ssh-ed25519")
	require.ErrorContains(t, err, ssh.FingerprintSHA256(c.o.Login.PublicKey()))
}

func TestUnreachableHostFailsFast(t *testing.T) {
	c := open(t, setup{hosts: 1})
	// A port nobody listens on: refused at once.
	ip := c.sshds[0].Addr
	closed := testsuite.FreePort(t, ip)
	// A port that accepts but never speaks SSH: the handshake times out.
	mute, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	require.NoError(t, err)
	defer mute.Close()
	go func() {
		for {
			conn, err := mute.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	hosts, err := sshvm.ParseHosts([]string{
		"root@" + net.JoinHostPort(ip, strconv.Itoa(closed)),
		"root@" + mute.Addr().String(),
	}, "root")
	require.NoError(t, err)
	o := c.o
	o.Hosts = hosts
	o.ConnectTimeout = time.Second
	b, err := sshvm.New(o)
	require.NoError(t, err)
	ctx := context.Background()

	start := time.Now()
	_, err = b.Create(ctx, deploy.NodeSpec{Index: 0, Keys: c.keys})
	require.ErrorContains(t, err, "create node 0: ssh root@"+net.JoinHostPort(ip, strconv.Itoa(closed))+": connect: ")
	require.ErrorContains(t, err, "connection refused")
	require.Less(t, time.Since(start), time.Second)
	t.Log(err)

	start = time.Now()
	_, err = b.Create(ctx, deploy.NodeSpec{Index: 1, Keys: c.keys})
	require.ErrorContains(t, err, "create node 1: ssh root@"+mute.Addr().String()+": connect: no SSH handshake within 1s")
	require.Less(t, time.Since(start), 3*time.Second)
	t.Log(err)

	_, err = b.Create(ctx, deploy.NodeSpec{Index: 2, Keys: c.keys})
	require.ErrorContains(t, err, "create node 2: the inventory has 2 hosts")

	start = time.Now()
	nodes, err := b.List(ctx)
	require.NoError(t, err, "a host that does not answer is not listed, not an error")
	require.Empty(t, nodes)
	require.Less(t, time.Since(start), 3*time.Second)
	require.Error(t, b.Destroy(ctx, deploy.Node{Index: 0}), "a host that does not answer cannot be said to be clean")
	require.NoError(t, b.Destroy(ctx, deploy.Node{Index: 7}), "an index beyond the inventory holds nothing")
}

func TestAgentThatCannotStartIsReported(t *testing.T) {
	c := open(t, setup{hosts: 1})
	start := time.Now()
	_, err := c.b.Create(context.Background(), deploy.NodeSpec{Index: 0, Keys: "# no keys at all\n"})
	require.ErrorContains(t, err, "ssh root@"+c.sshds[0].HostPort()+": start agent: ")
	require.ErrorContains(t, err, "holds no keys", "the agent's own error, from its log")
	require.Less(t, time.Since(start), 10*time.Second, "not the whole start timeout")
	t.Log(err)
}

func TestInventoryAndConfig(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.txt")
	require.NoError(t, os.WriteFile(inv, []byte("# web\ndeploy@10.0.0.5\n\n10.0.0.6:2222  # the odd one\n[::1]:2200\n"), 0o644))
	signer := testsuite.NewSigner(t)
	cfg := deploy.Default(dir)
	cfg.Backends.VM = sshvm.Name
	require.NoError(t, cfg.Set("nodes.inventory", "hosts.txt", "test"))
	o, err := sshvm.OptionsFromConfig(cfg, signer)
	require.NoError(t, err)
	require.Equal(t, []sshvm.Host{
		{User: "deploy", Addr: "10.0.0.5", Port: 22},
		{User: sshvm.DefaultUser(), Addr: "10.0.0.6", Port: 2222},
		{User: sshvm.DefaultUser(), Addr: "::1", Port: 2200},
	}, o.Hosts)
	require.Equal(t, ".dflow-node/"+cfg.Name, o.RemoteDir)
	require.False(t, o.AcceptNewHostKeys)

	require.NoError(t, os.WriteFile(inv, []byte("10.0.0.5\nroot@\n"), 0o644))
	_, err = sshvm.OptionsFromConfig(cfg, signer)
	require.ErrorContains(t, err, "hosts.txt:2: ")

	cfg = deploy.Default(dir)
	_, err = sshvm.OptionsFromConfig(cfg, signer)
	require.ErrorContains(t, err, "needs an inventory of hosts")

	_, err = deploy.Parse(filepath.Join(dir, "dflow.yaml"), []byte("nodes:\n  hosts: [a@h:99999]\n"), dir)
	require.ErrorContains(t, err, "dflow.yaml:2: nodes.hosts: ")
	_, err = deploy.Parse(filepath.Join(dir, "dflow.yaml"), []byte("nodes:\n  hosts: [h]\n  inventory: x\n"), dir)
	require.ErrorContains(t, err, "nodes.inventory: nodes.hosts is given too")
	_, err = deploy.Parse(filepath.Join(dir, "dflow.yaml"), []byte("nodes:\n  host_key_check: no\n"), dir)
	require.ErrorContains(t, err, "nodes.host_key_check: unknown value")
	c, err := deploy.Parse(filepath.Join(dir, "dflow.yaml"), []byte("nodes:\n  hosts: [root@10.0.0.5, 10.0.0.6:2222]\n  ssh_key: id_deploy\n  host_key_check: accept-new\n"), dir)
	require.NoError(t, err)
	_, err = sshvm.OptionsFromConfig(c, signer)
	require.ErrorContains(t, err, "dflow.yaml:3: nodes.ssh_key: ssh key: ")
}
