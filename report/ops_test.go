package report

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/scaffold"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/stretchr/testify/require"
)

// TestGoldenOps renders what the mutating commands say when they end (the
// second writer's lines follow "--- stderr") and compares it with its
// golden file (go test ./report -update rewrites them).
func TestGoldenOps(t *testing.T) {
	time.Local = time.UTC
	nodes := []deploy.Node{{Index: 0}, {Index: 1}, {Index: 3}}
	for _, c := range []struct {
		name   string
		render func(w, warn *bytes.Buffer) error
	}{
		{"ops", func(w, warn *bytes.Buffer) error {
			require.NoError(t, Release(w, warn, workflows.DeployResult{
				Release: deploy.Release{ID: 4, Kind: deploy.ReleaseDeploy, Version: v1, Digest: d1},
				Nodes: []workflows.NodeOutcome{
					{Index: 0, Serving: "p-1", Version: v1},
					{Index: 1, Serving: "p-2", Version: v2, Warning: "node 1: the new instance wrote to stderr"},
					{Index: 2, LeftOut: "stuck: agent unreachable"},
				},
			}))
			require.NoError(t, Stopped(w, []workflows.StoppedOn{{Index: 0, Stopped: []string{"p-1", "p-0"}}, {Index: 1}}))
			require.NoError(t, Copied(w, workflows.CopyResult{Target: deploy.Target{Version: v2, Digest: d1}, Nodes: []workflows.NodeOutcome{{Sent: 3 << 20}, {}}}))
			Provisioned(w, workflows.ProvisionResult{Created: nodes[2:], Destroyed: []deploy.Node{{Index: 4}}, Release: 4, Version: v1}, nodes)
			Provisioned(w, workflows.ProvisionResult{Created: nodes[2:]}, nodes)
			Provisioned(w, workflows.ProvisionResult{}, nil)
			ServerStopped(w, "/home/ann/shop")
			Init(w, scaffold.Result{Path: "/home/ann/shop/dflow.yaml", Package: "shop", File: "shop.cabal", Targets: []string{"executable", "source"}})
			ScheduleCreated(w, workflows.ScheduledGC, "@daily", controlplane.Schedule{ID: "dflow-shop-schedule-gc", Next: t0})
			for _, err := range []error{
				errors.New("deploy: node 1: not ready"),
				&controlplane.ExitError{Code: 3, Err: errors.New("")},
				fmt.Errorf("follow: %w", controlplane.ErrDetached),
			} {
				Failure(warn, err, false)
			}
			return nil
		}},
		{"ops-json", func(w, _ *bytes.Buffer) error {
			require.NoError(t, JSON(w, []int(nil)))
			require.NoError(t, JSON(w, map[string]int{"count": 2}))
			require.NoError(t, ServerState(w, true, "stopped", "/home/ann/shop", nil, t0))
			return ProblemsJSON(w, []error{&deploy.ConfigError{File: "dflow.yaml", Line: 3, Key: "app.port", Msg: "want a number"}, errors.New("whole file")})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var w, warn bytes.Buffer
			require.NoError(t, c.render(&w, &warn))
			if warn.Len() > 0 {
				w.WriteString("--- stderr\n")
				w.Write(warn.Bytes())
			}
			checkGolden(t, c.name, w.Bytes())
		})
	}
}

// checkGolden compares got with testdata/NAME.golden (with -update, writes
// it first).
func checkGolden(t *testing.T, name string, got []byte) {
	golden := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "no golden file: run go test ./report -update")
	require.Equal(t, string(want), string(got))
}
