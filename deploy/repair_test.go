package deploy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// well is a recorded, live node that serves and passes every check.
func well(i int) NodeHealth {
	return NodeHealth{Index: i, Node: Node{Index: i, ID: "n" + string(rune('0'+i))}, Recorded: true, Live: true, AgentOK: true,
		Serving: "r1-v1", ServingAlive: true, Checksum: ChecksumOK, Verified: true, Verdict: Verdict{Health: 100, Threshold: 100}}
}

func with(h NodeHealth, f func(*NodeHealth)) NodeHealth { f(&h); return h }

func TestPlanRepair(t *testing.T) {
	tests := []struct {
		name      string
		count     int
		seen      []NodeHealth
		current   bool
		destroy   []int
		create    []int
		provision []int
		reason    string // of the first destroy
	}{
		{name: "healthy cluster: nothing", count: 3, seen: []NodeHealth{well(0), well(1), well(2)}, current: true},
		{name: "missing node is created and provisioned", count: 3, seen: []NodeHealth{well(0), well(2)}, current: true, create: []int{1}, provision: []int{1}},
		{name: "without a current release nothing is provisioned", count: 2, seen: []NodeHealth{well(0)}, create: []int{1}},
		{
			name: "recorded but gone is destroyed and created", count: 2, current: true,
			seen:    []NodeHealth{well(0), with(well(1), func(h *NodeHealth) { h.Live, h.AgentOK = false, false })},
			destroy: []int{1}, create: []int{1}, provision: []int{1}, reason: "recorded but gone",
		},
		{
			name: "agent that does not answer", count: 2, current: true,
			seen:    []NodeHealth{well(0), with(well(1), func(h *NodeHealth) { h.AgentOK, h.Detail = false, "connection refused" })},
			destroy: []int{1}, create: []int{1}, provision: []int{1}, reason: "its agent does not answer: connection refused",
		},
		{
			name: "serving process died", count: 2, current: true,
			seen:    []NodeHealth{with(well(0), func(h *NodeHealth) { h.ServingAlive = false }), well(1)},
			destroy: []int{0}, create: []int{0}, provision: []int{0}, reason: "its serving process r1-v1 died",
		},
		{
			name: "corrupted executable", count: 2, current: true,
			seen:    []NodeHealth{well(0), with(well(1), func(h *NodeHealth) { h.Checksum = ChecksumMismatch })},
			destroy: []int{1}, create: []int{1}, provision: []int{1}, reason: "not the one that was built",
		},
		{
			name: "fails verify", count: 1, current: true,
			seen:    []NodeHealth{with(well(0), func(h *NodeHealth) { h.Verdict.Health = 40 })},
			destroy: []int{0}, create: []int{0}, provision: []int{0}, reason: "health 40 < threshold 100",
		},
		{
			name: "stale incarnation goes by index", count: 1, current: true,
			seen:    []NodeHealth{with(well(0), func(h *NodeHealth) { h.Stale = true; h.Node.ID = "" })},
			destroy: []int{0}, create: []int{0}, provision: []int{0}, reason: "another incarnation",
		},
		{
			name: "unrecorded live node is adopted", count: 1, current: true,
			seen:   []NodeHealth{with(well(0), func(h *NodeHealth) { h.Recorded = false })},
			create: []int{0}, provision: []int{0},
		},
		{
			name: "a node serving nothing while others serve is provisioned", count: 2, current: true,
			seen:      []NodeHealth{well(0), with(well(1), func(h *NodeHealth) { h.Serving, h.ServingAlive, h.Checksum, h.Verified = "", false, "", false })},
			provision: []int{1},
		},
		{
			name: "a stopped cluster is left alone", count: 2, current: true,
			seen: []NodeHealth{
				with(well(0), func(h *NodeHealth) { h.Serving, h.Verified = "", false }),
				with(well(1), func(h *NodeHealth) { h.Serving, h.Verified = "", false }),
			},
		},
		{
			name: "gone above the count is forgotten, live above it left alone", count: 1, current: true,
			seen:    []NodeHealth{well(0), with(well(1), func(h *NodeHealth) { h.Live = false }), well(2)},
			destroy: []int{1}, reason: "recorded but gone (above the count)",
		},
		{name: "count 0 with nothing", count: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PlanRepair(tt.count, tt.seen, tt.current)
			var destroy []int
			for _, d := range p.Destroy {
				destroy = append(destroy, d.Index)
			}
			require.Equal(t, tt.destroy, destroy, "destroy")
			require.Equal(t, tt.create, p.Create, "create")
			require.Equal(t, tt.provision, p.Provision, "provision")
			if tt.reason != "" {
				require.Contains(t, p.Destroy[0].Reason, tt.reason)
			}
			require.Equal(t, len(destroy) == 0 && len(tt.create) == 0 && len(tt.provision) == 0, p.Empty())
		})
	}
}

func TestRepairSubjects(t *testing.T) {
	rec := []Node{{Index: 0, ID: "a"}, {Index: 1, ID: "b"}, {Index: 3, ID: "d"}}
	live := []Node{{Index: 0, ID: "a"}, {Index: 1, ID: "b2"}, {Index: 2, ID: "c"}}
	got := RepairSubjects(rec, live)
	require.Len(t, got, 4)
	require.Equal(t, NodeHealth{Index: 0, Node: rec[0], Recorded: true, Live: true}, got[0])
	require.True(t, got[1].Stale)
	require.Empty(t, got[1].Node.ID, "a stale index is destroyed whatever its incarnation")
	require.Equal(t, NodeHealth{Index: 2, Node: live[2], Live: true}, got[2])
	require.Equal(t, NodeHealth{Index: 3, Node: rec[2], Recorded: true}, got[3])
}

func TestChaosRecovery(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var s State
	for i := 0; i < 3; i++ {
		s.AddChaos(ChaosRecord{At: t0.Add(time.Duration(i) * time.Minute), Index: i})
	}
	require.Equal(t, 1, s.MarkRecovered(t0.Add(4*time.Second)))
	require.Equal(t, 0, s.MarkRecovered(t0.Add(5*time.Second)), "recovered once")
	require.Equal(t, 2, s.MarkRecovered(t0.Add(2*time.Minute+2*time.Second)))
	r := SummarizeRecovery(s.Chaos)
	require.Equal(t, Recovery{Kills: 3, Recovered: 3, Mean: (4 + 62 + 2) / 3.0, P50: 4, Max: 62}, r)
	for i := 0; i < MaxChaos+5; i++ {
		s.AddChaos(ChaosRecord{Index: i})
	}
	require.Len(t, s.Chaos, MaxChaos)
	require.Equal(t, Recovery{}, SummarizeRecovery(nil))
}
