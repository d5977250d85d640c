package etcd_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/store/etcd"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestMain doubles as a second process: a writer that increments 50 times
// (DFLOW_TEST_ETCD_WRITER=endpoint,cluster) or a lock holder that takes the
// lock, says "locked" and sleeps until killed
// (DFLOW_TEST_ETCD_LOCKER=endpoint,cluster,ttl).
func TestMain(m *testing.M) {
	ctx := context.Background()
	if v := os.Getenv("DFLOW_TEST_ETCD_WRITER"); v != "" {
		f := strings.Split(v, ",")
		s, err := etcd.Open(ctx, "etcd://"+f[0], f[1])
		if err == nil {
			for i := 0; i < 50 && err == nil; i++ {
				err = testsuite.Increment(ctx, s)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if v := os.Getenv("DFLOW_TEST_ETCD_LOCKER"); v != "" {
		f := strings.Split(v, ",")
		ttl, _ := time.ParseDuration(f[2])
		s, err := etcd.Open(ctx, "etcd://"+f[0], f[1])
		if err == nil {
			_, err = s.Lock(ctx, fmt.Sprintf("child pid %d", os.Getpid()), ttl)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("locked")
		time.Sleep(time.Hour)
	}
	os.Exit(m.Run())
}

var clusters atomic.Int64

// cluster is a fresh cluster name, so every test has an empty store.
func cluster() string { return fmt.Sprintf("c%d-%d", os.Getpid(), clusters.Add(1)) }

func open(t *testing.T, endpoint, cluster string) *etcd.Store {
	t.Helper()
	s, err := etcd.Open(context.Background(), "etcd://"+endpoint, cluster)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	ep := testsuite.StartEtcd(t)
	names := map[backends.Store]string{}
	testsuite.StoreSuite(t,
		func(t *testing.T) backends.Store {
			c := cluster()
			s := open(t, ep, c)
			names[s] = c
			return s
		},
		func(t *testing.T, s backends.Store) backends.Store { return open(t, ep, names[s]) })
}

// TestTwoProcesses: another process and this one each increment 50 times.
func TestTwoProcesses(t *testing.T) {
	ep := testsuite.StartEtcd(t)
	c := cluster()
	s := open(t, ep, c)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DFLOW_TEST_ETCD_WRITER="+ep+","+c)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	for i := 0; i < 50; i++ {
		require.NoError(t, testsuite.Increment(context.Background(), s))
	}
	require.NoError(t, cmd.Wait(), out.String())
	st, err := s.Load(context.Background())
	require.NoError(t, err)
	require.Equal(t, 100, st.Count)
	require.Equal(t, int64(100), st.Revision)
}

// TestTwoStoresMixedWriters: two clients on one etcd, each adding and
// removing nodes and incrementing at once; nothing is lost.
func TestTwoStoresMixedWriters(t *testing.T) {
	ctx := context.Background()
	ep := testsuite.StartEtcd(t)
	c := cluster()
	a, b := open(t, ep, c), open(t, ep, c)
	done := make(chan error, 4)
	for g, s := range []*etcd.Store{a, b} {
		go func() {
			for i := 0; i < 30; i++ {
				if err := testsuite.Increment(ctx, s); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		go func() {
			for i := 0; i < 10; i++ {
				n := deploy.Node{Index: deploy.AutoIndex, ID: fmt.Sprintf("g%d-%d", g, i)}
				idx, err := s.Add(ctx, n)
				if err != nil {
					done <- err
					return
				}
				if i%2 == 1 { // keep the even ones
					if err := s.Remove(ctx, idx, deploy.Node{ID: n.ID}); err != nil {
						done <- err
						return
					}
				}
			}
			done <- nil
		}()
	}
	for i := 0; i < 4; i++ {
		require.NoError(t, <-done)
	}
	st, err := a.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, 60, st.Count)
	var ids []string
	seen := map[int]bool{}
	for _, n := range st.Nodes {
		require.False(t, seen[n.Index])
		seen[n.Index] = true
		ids = append(ids, n.ID)
	}
	sort.Strings(ids)
	require.Equal(t, []string{"g0-0", "g0-2", "g0-4", "g0-6", "g0-8", "g1-0", "g1-2", "g1-4", "g1-6", "g1-8"}, ids)
}

// TestLayout: the state is the embedded store's JSON at /dflow/<cluster>/state,
// its revision field matching the key's version.
func TestLayout(t *testing.T) {
	ctx := context.Background()
	ep := testsuite.StartEtcd(t)
	c := cluster()
	s := open(t, ep, c)
	require.Equal(t, "/dflow/"+c+"/state", s.Key())
	_, err := s.Add(ctx, deploy.Node{Index: 4, ID: "x", Address: "10.0.0.4"})
	require.NoError(t, err)
	_, err = s.Add(ctx, deploy.Node{Index: 1, ID: "y"})
	require.NoError(t, err)

	cl, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	require.NoError(t, err)
	defer cl.Close()
	resp, err := cl.Get(ctx, "/dflow/"+c+"/state")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(resp.Kvs[0].Value, &raw))
	require.EqualValues(t, 2, raw["revision"])
	require.EqualValues(t, 2, resp.Kvs[0].Version)
	nodes := raw["nodes"].([]any)
	require.EqualValues(t, 1, nodes[0].(map[string]any)["index"], "sorted by index")
	require.Equal(t, "10.0.0.4", nodes[1].(map[string]any)["address"])
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "etcd://127.0.0.1:2379", want: []string{"127.0.0.1:2379"}},
		{in: "etcd://a.example:2379,b.example:22379", want: []string{"a.example:2379", "b.example:22379"}},
		{in: "etcd://[::1]:2379", want: []string{"[::1]:2379"}},
		{in: "etcd://", err: "no host given"},
		{in: "etcd:///", err: "unexpected path"},
		{in: "etcd://h", err: `endpoint "h": want HOST:PORT`},
		{in: "etcd://h:", err: `bad port ""`},
		{in: "etcd://h:x", err: `bad port "x"`},
		{in: "etcd://h:0", err: `bad port "0"`},
		{in: "etcd://h:65536", err: `bad port "65536"`},
		{in: "etcd://h:+1", err: `bad port "+1"`},
		{in: "etcd://:2379", err: "has no host"},
		{in: "etcd://h:1,,g:2", err: "endpoint 2 is empty"},
		{in: "etcd://h:1,", err: "endpoint 2 is empty"},
		{in: "etcd://h:1,h:1", err: "given twice"},
		{in: "etcd://h:1/dflow", err: `unexpected path "/dflow"`},
		{in: "etcd://h:1?x=1", err: "unexpected query"},
		{in: "etcd://u:p@h:1", err: "user info"},
		{in: "etcd://h:1, g:2", err: "unexpected blank"},
		{in: "http://h:1", err: `scheme "http" is not etcd`},
		{in: "h:1", err: "does not start with etcd://"},
		{in: "etcd://::1:2379", err: "want HOST:PORT"},
	} {
		got, err := etcd.ParseURL(tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			require.ErrorContains(t, err, fmt.Sprintf("%q", tc.in))
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	_, err := etcd.Open(ctx, "etcd://", "c")
	require.ErrorContains(t, err, "no host given")
	_, err = etcd.Open(ctx, "etcd://127.0.0.1:2379", "")
	require.ErrorContains(t, err, "cluster name")
	_, err = etcd.Open(ctx, "etcd://127.0.0.1:2379", "a/b")
	require.ErrorContains(t, err, "cluster name")
}

// TestUnreachable: nothing listening, and an address that drops packets,
// both fail within the dial timeout with an error naming the endpoints.
func TestUnreachable(t *testing.T) {
	for url, reason := range map[string]string{
		"etcd://127.0.0.1:1,127.0.0.1:2": "127.0.0.1:1: connect: connection refused; 127.0.0.1:2: connect: connection refused",
		"etcd://192.0.2.1:2379":          "192.0.2.1:2379: ", // TEST-NET-1: never answers
	} {
		t.Run(url, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := etcd.Open(context.Background(), url, "c")
			took := time.Since(start)
			t.Logf("failed after %s: %v", took.Round(time.Millisecond), err)
			require.Error(t, err)
			require.ErrorContains(t, err, "no answer from etcd at "+strings.TrimPrefix(url, "etcd://")+" within 5s")
			require.ErrorContains(t, err, reason)
			require.Less(t, took, etcd.DefaultDialTimeout+time.Second)
		})
	}
}

// TestEtcdGoesAway: a store whose etcd dies answers with an error within
// its op timeout, not a hang.
func TestEtcdGoesAway(t *testing.T) {
	ep := testsuite.StartEtcd(t)
	s, err := etcd.New(context.Background(), etcd.Options{Endpoints: []string{ep}, Cluster: cluster(), OpTimeout: 2 * time.Second})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Load(context.Background())
	require.NoError(t, err)
	// Stop the server by freezing it: SIGSTOP keeps the port open but silent.
	pid := testsuite.EtcdPID(ep)
	require.NotZero(t, pid)
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	defer syscall.Kill(pid, syscall.SIGCONT)
	// kill returns before the process has stopped: a request sent at once
	// could still be answered. Wait until the kernel shows it stopped.
	require.Eventually(t, func() bool { return processState(pid) == "T" }, 5*time.Second, time.Millisecond, "etcd (pid %d) did not stop", pid)
	start := time.Now()
	_, err = s.Load(context.Background())
	require.ErrorContains(t, err, "no answer within 2s")
	require.ErrorContains(t, err, ep)
	require.Less(t, time.Since(start), 3*time.Second)
}

func TestLock(t *testing.T) {
	ctx := context.Background()
	ep := testsuite.StartEtcd(t)
	c := cluster()
	a, b := open(t, ep, c), open(t, ep, c)

	unlock, err := a.Lock(ctx, "deploy by alice", 5*time.Second)
	require.NoError(t, err)
	_, err = b.Lock(ctx, "deploy by bob", 5*time.Second)
	require.ErrorIs(t, err, etcd.ErrLocked)
	require.ErrorContains(t, err, `cluster `+c+` is locked by "deploy by alice"`)
	var le *etcd.LockedError
	require.ErrorAs(t, err, &le)
	require.Equal(t, "deploy by alice", le.Holder)
	_, err = a.Lock(ctx, "again by alice", 5*time.Second)
	require.ErrorIs(t, err, etcd.ErrLocked, "the lock is not reentrant")

	other := open(t, ep, cluster())
	u2, err := other.Lock(ctx, "another cluster", 5*time.Second)
	require.NoError(t, err, "clusters lock separately")
	require.NoError(t, u2())

	require.NoError(t, unlock())
	require.NoError(t, unlock(), "twice")
	unlockB, err := b.Lock(ctx, "deploy by bob", 5*time.Second)
	require.NoError(t, err)
	_, err = a.Lock(ctx, "alice", 5*time.Second)
	require.ErrorContains(t, err, `locked by "deploy by bob"`)
	require.NoError(t, unlockB())

	// Refused attempts leave no keys behind.
	cl, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	require.NoError(t, err)
	defer cl.Close()
	resp, err := cl.Get(ctx, etcd.LockKey(c)+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Zero(t, resp.Count)
}

// TestLockExpiresWithCrashedHolder: another process takes the lock and is
// SIGKILLed; the lock is free again within ttl + 1 s.
func TestLockExpiresWithCrashedHolder(t *testing.T) {
	ctx := context.Background()
	ep := testsuite.StartEtcd(t)
	c := cluster()
	s := open(t, ep, c)
	const ttl = 2 * time.Second

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DFLOW_TEST_ETCD_LOCKER="+ep+","+c+","+ttl.String())
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "the child did not take the lock")
	require.Equal(t, "locked\n", line)

	_, err = s.Lock(ctx, "parent", ttl)
	require.ErrorIs(t, err, etcd.ErrLocked)
	require.ErrorContains(t, err, fmt.Sprintf("child pid %d", cmd.Process.Pid))

	// The child keeps its lease alive: still locked after more than ttl.
	time.Sleep(ttl + 500*time.Millisecond)
	_, err = s.Lock(ctx, "parent", ttl)
	require.ErrorIs(t, err, etcd.ErrLocked, "a live holder keeps the lock past its ttl")

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	_ = cmd.Wait()
	for {
		unlock, err := s.Lock(ctx, "parent", ttl)
		if err == nil {
			t.Logf("lock free %s after the holder was killed (ttl %s)", time.Since(killed).Round(time.Millisecond), ttl)
			require.NoError(t, unlock())
			break
		}
		require.ErrorIs(t, err, etcd.ErrLocked)
		require.Less(t, time.Since(killed), ttl+time.Second, "the crashed holder's lock did not expire within ttl+1s")
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLatency logs what a Load and a Save take against a local etcd.
func TestLatency(t *testing.T) {
	ctx := context.Background()
	ep := testsuite.StartEtcd(t)
	s := open(t, ep, cluster())
	st, err := s.Load(ctx)
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		st.Nodes = append(st.Nodes, deploy.Node{Index: i, ID: fmt.Sprint(i), Address: "10.0.0.1", AgentURL: "http://10.0.0.1:7077"})
	}
	const n = 200
	var loads, saves []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		st, err = s.Load(ctx)
		require.NoError(t, err)
		loads = append(loads, time.Since(start))
		st.Count++
		start = time.Now()
		require.NoError(t, s.Save(ctx, st))
		saves = append(saves, time.Since(start))
	}
	q := func(d []time.Duration, p float64) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[int(float64(len(d)-1)*p)].Round(10 * time.Microsecond)
	}
	t.Logf("local etcd, %d ops, 10-node state: Load p50 %s p99 %s; Save p50 %s p99 %s",
		n, q(loads, .5), q(loads, .99), q(saves, .5), q(saves, .99))
}

// processState is the state letter of /proc/PID/stat ("R", "S", "T", ...).
func processState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return ""
	}
	return string(b[i+2])
}
