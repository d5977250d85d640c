package main_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// TestServerExposesOnlyTheUI runs `dflow server start --ui 0.0.0.0:PORT` in a
// project whose .dflow/ an older dflow made 0755 with a 0644 log, and checks
// what the operator sees and gets: the warning on start and status, the UI
// answering on another loopback address (127.0.0.2) while the frontend does
// not, and the state directory 0700 with its files 0600.
func TestServerExposesOnlyTheUI(t *testing.T) {
	p := newProject(t, "")
	state := filepath.Join(p.dir, ".dflow")
	require.NoError(t, os.MkdirAll(state, 0o755))
	require.NoError(t, os.Chmod(state, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(state, "server.log"), []byte("an older dflow's log\n"), 0o644))
	require.NoError(t, os.Chmod(filepath.Join(state, "server.log"), 0o644))

	port := testsuite.FreePort(t)
	const warning = "dflow: warning: the Temporal Web UI listens on 0.0.0.0:"
	_, errOut := p.run("server", "start", "--ui", fmt.Sprintf("0.0.0.0:%d", port))
	require.Contains(t, errOut, warning, "server start warns")
	require.Contains(t, errOut, "terminate and reset workflows")
	_, errOut = p.run("server", "status")
	require.Contains(t, errOut, warning, "server status warns")

	out, _ := p.run("server", "status", "-o", "json")
	var st struct {
		Frontend string   `json:"frontend"`
		UI       string   `json:"ui"`
		Warnings []string `json:"warnings"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	require.Len(t, st.Warnings, 1, out)
	host, fport, err := net.SplitHostPort(st.Frontend)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host)
	u, err := url.Parse(st.UI)
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0", u.Hostname())

	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.2", fport), 2*time.Second)
	if err == nil {
		c.Close()
	}
	require.Error(t, err, "the frontend must not answer on 127.0.0.2")
	hc := http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + net.JoinHostPort("127.0.0.2", u.Port()) + "/api/v1/namespaces/default")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the UI answers on 127.0.0.2 and reaches the frontend")

	modes := map[string]os.FileMode{".": 0o700, "temporal.db": 0o600, "server.json": 0o600, "server.log": 0o600}
	for name, want := range modes {
		fi, err := os.Stat(filepath.Join(state, name))
		require.NoError(t, err)
		require.Equal(t, want, fi.Mode().Perm(), "%s is %#o", name, fi.Mode().Perm())
	}
	p.run("server", "stop")
}
