package main_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestSecretsStayOutOfTheControlPlane deploys with an app.secrets secret
// (its value in .dflow/secrets.env) and an inline app.env value, and then
// looks for both where an attacker or a curious operator could: every
// workflow history (through the SDK and through the Web UI's API), the
// Store and every other file under .dflow/. The app must still get both.
func TestSecretsStayOutOfTheControlPlane(t *testing.T) {
	t.Parallel()
	secret := fmt.Sprintf("postgres://app:s3cr3t-%d@db.internal/app", time.Now().UnixNano())
	inline := fmt.Sprintf("inline-token-%d", time.Now().UnixNano())
	p := helloProject(t, fmt.Sprintf("nodes:\n  agent_port: %d\napp:\n  port: %d\n  env: [INLINE_TOKEN=%s]\n  secrets: [DATABASE_URL]\n",
		testsuite.FreePort(t), testsuite.FreePort(t), inline))
	state := filepath.Join(p.dir, ".dflow")
	require.NoError(t, os.MkdirAll(state, 0o700))

	// A secrets file others may read is refused, naming the fix.
	sf := filepath.Join(state, "secrets.env")
	require.NoError(t, os.WriteFile(sf, []byte("# for the test\nDATABASE_URL="+secret+"\n"), 0o644))
	p.run("set", "2")
	msg, _ := p.fail("deploy")
	require.Contains(t, msg, "chmod 600")
	require.NotContains(t, msg, secret)
	require.NoError(t, os.Chmod(sf, 0o600))
	p.run("deploy")

	// The app got both values: read its environment from /proc.
	got := appEnvs(t, "INLINE_TOKEN="+inline)
	require.Len(t, got, 2, "one app process per node")
	for _, env := range got {
		require.Contains(t, env, "DATABASE_URL="+secret)
		require.Contains(t, env, "INLINE_TOKEN="+inline)
		require.Contains(t, env, "HOST=127.0.0.1")
	}

	// Every workflow history, through the SDK.
	var info struct {
		Frontend string `json:"frontend"`
		UI       string `json:"ui"`
	}
	out, _ := p.run("server", "status", "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(out), &info), out)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: info.Frontend})
	require.NoError(t, err)
	defer c.Close()
	list, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 1000})
	require.NoError(t, err)
	require.NotEmpty(t, list.Executions)
	events := 0
	for _, e := range list.Executions {
		it := c.GetWorkflowHistory(ctx, e.Execution.WorkflowId, e.Execution.RunId, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			b, err := protojson.Marshal(ev)
			require.NoError(t, err)
			events++
			// Payloads are base64 in protojson: look at the raw bytes too.
			raw, err := ev.Marshal()
			require.NoError(t, err)
			for _, hay := range [][]byte{b, raw} {
				require.False(t, bytes.Contains(hay, []byte(secret)), "the secret is in %s's history (event %d)", e.Execution.WorkflowId, ev.EventId)
				require.False(t, bytes.Contains(hay, []byte(inline)), "app.env's value is in %s's history (event %d): %s", e.Execution.WorkflowId, ev.EventId, b)
			}
		}
	}
	require.Greater(t, events, 20, "the deploy's history was read")

	// The Web UI's API: the list and each history, as a browser gets them.
	require.NotEmpty(t, info.UI)
	body := httpGet(t, info.UI+"/api/v1/namespaces/default/workflows")
	require.Contains(t, body, "dflow-")
	requireAbsent(t, body, secret, "the Web UI's workflow list")
	for _, e := range list.Executions {
		u := info.UI + "/api/v1/namespaces/default/workflows/" + url.PathEscape(e.Execution.WorkflowId) + "/history?execution.runId=" + e.Execution.RunId
		h := httpGet(t, u)
		require.Contains(t, h, "events")
		for _, v := range []string{secret, inline} {
			requireAbsent(t, h, v, "the Web UI's history of "+e.Execution.WorkflowId)
		}
	}

	// The Store and every other file under .dflow/: the secret only in its
	// own file. (app.env's value is in the Store's configuration revision,
	// by design: it is configuration, not a secret.)
	err = filepath.WalkDir(state, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == sf || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil // a socket or a file that went away
		}
		require.False(t, bytes.Contains(b, []byte(secret)), "the secret is in %s", path)
		return nil
	})
	require.NoError(t, err)

	// Modes: the state dir is the operator's alone.
	for path, want := range map[string]os.FileMode{state: 0o700, sf: 0o600,
		filepath.Join(state, "store.db"): 0o600, filepath.Join(state, "temporal.db"): 0o600} {
		st, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, want, st.Mode().Perm(), "mode of %s", path)
	}
}

// appEnvs returns the environment of every process whose environment
// holds marker (a value unique to the test).
func appEnvs(t *testing.T, marker string) []string {
	t.Helper()
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		env := strings.ReplaceAll(string(b), "\x00", "\n")
		if strings.Contains(env, "DFLOW_INDEX=") && strings.Contains(env, marker) {
			out = append(out, env)
		}
	}
	return out
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", u, b)
	return string(b)
}

// requireAbsent fails if v is in the JSON document body, in any string or
// in any string's base64 decoding (payloads travel as base64).
func requireAbsent(t *testing.T, body, v, where string) {
	t.Helper()
	var doc any
	require.NoError(t, json.Unmarshal([]byte(body), &doc), where)
	var walk func(x any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		case string:
			require.NotContains(t, x, v, where)
			if d, err := base64.StdEncoding.DecodeString(x); err == nil {
				require.NotContains(t, string(d), v, where)
			}
		}
	}
	walk(doc)
}
