package devserver_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/worker/devserver"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// TestOnlyTheUIIsExposed binds the Web UI to every interface and checks, on
// other loopback addresses than 127.0.0.1 (the only targets a test may
// connect to here), that the UI answers there and reaches the frontend,
// that the frontend does not answer there, and that every port the process
// listens on but the UI's (and an explicitly exposed frontend's) is on
// 127.0.0.1.
func TestOnlyTheUIIsExposed(t *testing.T) {
	tests := []struct {
		name   string
		expose string // Options.ExposeFrontend
	}{
		{name: "ui on every interface"},
		{name: "ui on every interface, frontend exposed on 127.0.0.3", expose: "127.0.0.3:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := devserver.New(devserver.Options{Dir: t.TempDir(), FrontendPort: -1, UIHost: "0.0.0.0", ExposeFrontend: tt.expose})
			require.NoError(t, err)
			require.NoError(t, s.Start(ctx))
			defer s.Stop(ctx)

			host, fport := splitHostPort(t, s.FrontendAddress())
			require.Equal(t, "127.0.0.1", host, "the frontend is on loopback")
			u, err := url.Parse(s.UIURL())
			require.NoError(t, err)
			require.Equal(t, "0.0.0.0", u.Hostname())
			uport, err := strconv.Atoi(u.Port())
			require.NoError(t, err)

			// Another address of this machine: the frontend is not there,
			// the UI is, and the UI reaches the frontend.
			c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.2", strconv.Itoa(fport)), 2*time.Second)
			if err == nil {
				c.Close()
			}
			require.Error(t, err, "the frontend must not answer on 127.0.0.2")
			ui := fmt.Sprintf("http://127.0.0.2:%d", uport)
			require.Equal(t, http.StatusOK, get(t, ui+"/").code, "the UI answers on 127.0.0.2")
			ns := get(t, ui+"/api/v1/namespaces/default")
			require.Equal(t, http.StatusOK, ns.code, "the UI reaches the frontend: %s", ns.body)
			require.Contains(t, ns.body, `"default"`)

			allowed := map[int]bool{uport: true}
			if tt.expose != "" {
				ehost, eport := splitHostPort(t, s.ExposedFrontendAddress())
				require.Equal(t, "127.0.0.3", ehost)
				allowed[eport] = true
				// The exposed address is a working frontend.
				ec, err := client.Dial(client.Options{HostPort: s.ExposedFrontendAddress()})
				require.NoError(t, err)
				_, err = ec.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
				ec.Close()
				require.NoError(t, err, "the frontend answers on its exposed address")
			} else {
				require.Empty(t, s.ExposedFrontendAddress())
			}

			ls := listeners(t)
			seen := map[int]bool{}
			for _, l := range ls {
				seen[l.port] = true
				if allowed[l.port] {
					continue
				}
				require.True(t, l.ip.Equal(net.IPv4(127, 0, 0, 1)), "port %d listens on %s, not 127.0.0.1", l.port, l.ip)
			}
			require.True(t, seen[fport], "the frontend's port %d is among the listeners %v", fport, ls)
			require.True(t, seen[uport], "the UI's port %d is among the listeners %v", uport, ls)
			// frontend, history, matching, worker: a gRPC port and a
			// membership port each.
			require.GreaterOrEqual(t, len(ls)-len(allowed), 8, "listeners %v", ls)
		})
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		info devserver.Info
		want []string // a substring of each line, in order
	}{
		{"all on loopback", devserver.Info{UI: "http://127.0.0.1:8233"}, nil},
		{"no ui", devserver.Info{}, nil},
		{"localhost", devserver.Info{UI: "http://localhost:8233"}, nil},
		{"ipv6 loopback", devserver.Info{UI: "http://[::1]:8233"}, nil},
		{"frontend on another loopback address", devserver.Info{UI: "http://127.0.0.1:8233", ExposedFrontend: "127.0.0.5:7233"}, nil},
		{"ui everywhere", devserver.Info{UI: "http://0.0.0.0:8233"}, []string{"Web UI listens on 0.0.0.0:8233, beyond loopback: whoever reaches it can read every workflow's history and terminate and reset workflows"}},
		{"ui on a lan address", devserver.Info{UI: "http://[::]:9000"}, []string{"Web UI listens on [::]:9000"}},
		{"both", devserver.Info{UI: "http://0.0.0.0:8233", ExposedFrontend: "[::]:7233"}, []string{"Web UI", "frontend is exposed on [::]:7233 (temporal.frontend): whoever reaches it can start, signal, reset and terminate any workflow"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.info.Warnings()
			require.Len(t, got, len(tt.want), "%q", got)
			for i, w := range tt.want {
				require.Contains(t, got[i], w)
			}
		})
	}
}

// TestFileModes starts the server on a new state directory, then again on
// one left as an older dflow left it (0755, a 0644 database, record and
// log), and finds the directory 0700 and the database, its journal files,
// the record and the log 0600 both times.
func TestFileModes(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), ".dflow")
	s := start(t, dir, -1)
	require.NoError(t, devserver.WriteInfo(dir, devserver.Info{PID: os.Getpid()}))
	requireModes(t, dir)
	require.NoError(t, s.Stop(ctx))

	// As an older dflow left it.
	require.NoError(t, os.Chmod(dir, 0o755))
	for _, f := range []string{"temporal.db", "server.json"} {
		require.NoError(t, os.Chmod(filepath.Join(dir, f), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "server.log"), []byte("old\n"), 0o644))
	require.NoError(t, os.Chmod(filepath.Join(dir, "server.log"), 0o644))
	s = start(t, dir, -1)
	defer s.Stop(ctx)
	requireModes(t, dir)
	require.Equal(t, os.FileMode(0o600), modeOf(t, filepath.Join(dir, "server.log")))
}

// requireModes checks dir is 0700 and the database, whichever of its
// journal, WAL and shared-memory files exist, and the record are 0600.
func requireModes(t *testing.T, dir string) {
	t.Helper()
	require.Equal(t, os.FileMode(0o700), modeOf(t, dir), dir)
	files := []string{"temporal.db", "server.json"}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "temporal.db-") {
			files = append(files, e.Name())
		}
	}
	for _, f := range files {
		require.Equal(t, os.FileMode(0o600), modeOf(t, filepath.Join(dir, f)), f)
	}
}

func modeOf(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Mode().Perm()
}

type response struct {
	code int
	body string
}

func get(t *testing.T, u string) response {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{resp.StatusCode, string(b)}
}

func splitHostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	return host, p
}

type listener struct {
	ip   net.IP
	port int
}

func (l listener) String() string { return net.JoinHostPort(l.ip.String(), strconv.Itoa(l.port)) }

// listeners are the TCP sockets this process listens on, from /proc/net/tcp
// and tcp6, matched to the process by the inodes of its open sockets.
func listeners(t *testing.T) []listener {
	t.Helper()
	mine := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	var out []listener
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !mine[fields[9]] { // 0A: LISTEN
				continue
			}
			out = append(out, parseProcAddr(t, fields[1]))
		}
		require.NoError(t, sc.Err())
		f.Close()
	}
	return out
}

// parseProcAddr reads a /proc/net/tcp address: the IP as 32-bit words in
// host (little-endian) order, then ":" and the port in hex.
func parseProcAddr(t *testing.T, s string) listener {
	t.Helper()
	hexIP, hexPort, ok := strings.Cut(s, ":")
	require.True(t, ok, s)
	raw, err := hex.DecodeString(hexIP)
	require.NoError(t, err, s)
	ip := make(net.IP, len(raw))
	for w := 0; w < len(raw); w += 4 {
		for i := 0; i < 4; i++ {
			ip[w+i] = raw[w+3-i]
		}
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	require.NoError(t, err, s)
	return listener{ip: ip, port: int(port)}
}
