package report

import (
	"bytes"
	"flag"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const (
	v1 = "3f2a9c1e0b7d4a5f6c8e9d0a1b2c3d4e5f607182"
	v2 = "9c0ffee1234567890abcdef1234567890abcdef0-dirty"
	d1 = "sha256:0123456789abcdef0123456789abcdef"
)

var t0 = time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)

// TestGolden renders each answer and compares it with its golden file
// (go test ./report -update rewrites them after a deliberate change).
func TestGolden(t *testing.T) {
	time.Local = time.UTC
	victim := 2
	for _, c := range []struct {
		name   string
		render func(*bytes.Buffer) error
	}{
		{"releases", func(b *bytes.Buffer) error {
			return Releases(b, deploy.State{Current: 2, Releases: []deploy.Release{
				{ID: 1, Kind: deploy.ReleaseDeploy, Version: v1, Digest: d1, Who: "ann@laptop", At: t0, Finished: t0.Add(2340 * time.Millisecond), Outcome: "succeeded"},
				{ID: 2, Kind: deploy.ReleaseRollback, Of: 1, Version: v1, Digest: d1, Who: "bob@ci", At: t0.Add(time.Hour), Finished: t0.Add(time.Hour + time.Second), Outcome: "succeeded"},
				{ID: 3, Kind: deploy.ReleaseDeploy, Version: v2, Who: "ann@laptop", At: t0.Add(2 * time.Hour), Outcome: "failed", Error: "node 1: not ready\nlast log lines"},
			}})
		}},
		{"versions", func(b *bytes.Buffer) error {
			mixed, err := Versions(b, []controlplane.VersionRow{
				{Index: 0, AppURL: "http://127.0.0.1:8080/", Serving: v1, ServingID: "p-1", Others: []string{v2}},
				{Index: 1, AppURL: "http://127.0.0.1:8081/", Serving: v2, ServingID: "p-7"},
				{Index: 2, AppURL: "http://127.0.0.1:8082/", Error: "connection refused"},
			})
			require.True(t, mixed)
			return err
		}},
		{"gc-dry-run", func(b *bytes.Buffer) error {
			return GC(b, workflows.GCResult{DryRun: true, Plan: deploy.GCPlan{
				Keep:          []deploy.GCVersion{{Version: v1, Digest: d1, LastUsed: t0, Nodes: []int{0, 1}, Keep: []string{"current release", "running"}}},
				Remove:        []deploy.GCVersion{{Digest: "sha256:ffff", InStore: true}},
				LostRollbacks: []deploy.Release{{ID: 1, Version: v2}},
			}})
		}},
		{"chaos", func(b *bytes.Buffer) error {
			return Chaos(b, ChaosReportOf([]deploy.ChaosRecord{
				{At: t0, Index: 1, NodeID: "n1", RecoveredAt: t0.Add(3 * time.Second), RecoverySeconds: 3},
				{At: t0.Add(time.Minute), Index: 2, NodeID: "n2"},
			}))
		}},
		{"list", func(b *bytes.Buffer) error {
			return Nodes(b, []controlplane.NodeRow{
				{Index: 0, Address: "127.0.0.2", State: controlplane.NodeRunning, ID: "local-0-1a2b3c4d", AgentURL: "http://127.0.0.2:7077", UptimeSeconds: 3725},
				{Index: 1, Address: "127.0.0.3", State: controlplane.NodeUnreachable, ID: "local-1-5e6f7a8b", AgentURL: "http://127.0.0.3:7077", Error: "connection refused"},
				{Index: 2, Address: "127.0.0.4", State: controlplane.NodeGone, ID: "local-2-9c0d1e2f", AgentURL: "http://127.0.0.4:7077"},
			})
		}},
		{"schedules", func(b *bytes.Buffer) error {
			return Schedules(b, []controlplane.Schedule{
				{ID: "dflow-shop-schedule-gc", Spec: "@daily", Next: t0.Add(10 * time.Hour), Action: "gc --count 3"},
				{ID: "dflow-shop-schedule-chaos-monkey", Spec: "0 14 * * 1-5", Next: t0.Add(24 * time.Hour), Action: "chaos-monkey", Paused: true},
			})
		}},
		{"repair", func(b *bytes.Buffer) error {
			Repair(b, workflows.RepairResult{
				Plan:    deploy.RepairPlan{Destroy: []deploy.RepairAction{{Index: 1, Reason: "agent does not answer"}}},
				Created: []deploy.Node{{Index: 1, Address: "127.0.0.2"}, {Index: 3, Address: "127.0.0.4"}},
				Version: v1, Provisioned: make([]workflows.NodeOutcome, 2), Whole: true,
			})
			Kill(b, workflows.ChaosResult{Victim: &victim, Node: "n2"})
			Kill(b, workflows.ChaosResult{Skipped: "only 1 healthy node would remain (min 2)"})
			return nil
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, c.render(&b))
			checkGolden(t, c.name, b.Bytes())
		})
	}
}
