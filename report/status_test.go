package report

import (
	"bytes"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/stretchr/testify/require"
)

// TestStatusGolden renders `dflow status` for a cluster mid-deploy with a
// node down, and with the control plane stopped (go test ./report -update
// rewrites the golden file after a deliberate change).
func TestStatusGolden(t *testing.T) {
	time.Local = time.UTC
	now := t0.Add(3 * time.Hour)
	h, th, low := 100.0, 100.0, 40.0
	running := controlplane.Status{
		Cluster: "shop", Count: 3,
		ControlPlane: controlplane.ControlPlaneState{Embedded: true, Running: true, Address: "127.0.0.1:7233", UI: "http://127.0.0.1:8233", PID: 4242,
			TaskQueue: "dflow", Workers: []controlplane.Worker{{Identity: "4242@laptop@", LastSeen: now.Add(-2 * time.Second)}}},
		Current:  &controlplane.ReleaseSummary{ID: 4, Kind: "deploy", Version: v1, Digest: d1, Who: "ann@laptop", At: t0},
		Previous: &controlplane.ReleaseSummary{ID: 2, Kind: "deploy", Version: v2, Digest: d1, Who: "bob@ci", At: t0.Add(-time.Hour)},
		Operation: &controlplane.Operation{ID: "dflow-shop", RunID: "r1", Command: "deploy", Who: "ann@laptop", Started: now.Add(-12 * time.Second),
			Progress: "deploy: switch [######..............] 1/3  12s", URL: "http://127.0.0.1:8233/namespaces/default/workflows/dflow-shop/r1/history"},
		Watchers:  []controlplane.Operation{{ID: "dflow-shop-repair", Command: "repair --watch", Who: "ann@laptop", Started: now.Add(-time.Hour)}},
		Schedules: []controlplane.Schedule{{ID: "dflow-shop-schedule-gc", Spec: "@daily", Next: t0.Add(10 * time.Hour), Action: "gc"}},
		Nodes: []controlplane.NodeStatus{
			{Index: 0, Address: "127.0.0.2", State: "running", Serving: v1, Health: &h, Threshold: &th, Checked: now.Add(-time.Minute), LastSeen: now},
			{Index: 1, Address: "127.0.0.3", State: "running", Serving: v2, Health: &low, Threshold: &th, Checked: now.Add(-time.Minute), LastSeen: now},
			{Index: 2, Address: "127.0.0.4", State: "gone", Checked: now.Add(-time.Hour), Health: &h, Threshold: &th, LastSeen: now.Add(-time.Hour)},
		},
	}
	stopped := controlplane.Status{Cluster: "shop", Count: 1, ControlPlane: controlplane.ControlPlaneState{Embedded: true, TaskQueue: "dflow"},
		Nodes: []controlplane.NodeStatus{{Index: 0, Address: "127.0.0.2", State: "running", LastSeen: now}}}
	var b bytes.Buffer
	require.NoError(t, Status(&b, running, now))
	b.WriteString("----\n")
	require.NoError(t, Status(&b, stopped, now))
	checkGolden(t, "status", b.Bytes())
}
