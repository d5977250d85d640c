package deploy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// well is a recorded, live node that serves and passes every check.
func well(i int) NodeHealth {
	return NodeHealth{Index: i, Node: Node{Index: i, ID: "n" + string(rune('0'+i))}, Recorded: true, Live: true, AgentOK: true,
		Serving: "r1-v1", ServingVersion: "v1", ServingAlive: true, Checksum: ChecksumOK, Verified: true, Verdict: Verdict{Health: 100, Threshold: 100}}
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
			pol := RepairPolicy{} // as repair did before the bound and version faults
			if tt.current {
				pol.Current = &Release{ID: 1, Version: "v1"}
			}
			p := PlanRepair(tt.count, tt.seen, pol)
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

// TestPlanRepairGuard: a release failing on most of its nodes is a version
// fault (nothing destroyed); node faults are replaced with at most
// MaxUnavailable serving nodes out at once, the already dead ones first.
func TestPlanRepairGuard(t *testing.T) {
	cur := &Release{ID: 4, Version: "v1"}
	failsVerify := func(h *NodeHealth) { h.Verdict.Health = 0 }
	crashed := func(h *NodeHealth) { h.ServingAlive, h.Verified = false, false }
	corrupt := func(h *NodeHealth) { h.Checksum = ChecksumMismatch }
	gone := func(h *NodeHealth) { h.Live, h.AgentOK = false, false }
	tests := []struct {
		name    string
		count   int
		seen    []NodeHealth
		max     int
		fault   string // a part of the version fault ("" none)
		batches [][]int
	}{
		{name: "verify fails everywhere: a version fault", count: 3, max: 1,
			seen:  []NodeHealth{with(well(0), failsVerify), with(well(1), failsVerify), with(well(2), failsVerify)},
			fault: "release 4 (version v1) is unhealthy on 3 of 3 nodes"},
		{name: "crashes on two of three: a version fault", count: 3, max: 1,
			seen:  []NodeHealth{with(well(0), crashed), well(1), with(well(2), crashed)},
			fault: "on 2 of 3 nodes"},
		{name: "the only node fails verify: a version fault", count: 1, max: 1,
			seen:  []NodeHealth{with(well(0), failsVerify)},
			fault: "on 1 of 1 nodes"},
		{name: "one of three fails verify: a node fault", count: 3, max: 1,
			seen:    []NodeHealth{well(0), with(well(1), failsVerify), well(2)},
			batches: [][]int{{1}}},
		{name: "two of four: no majority, node faults one at a time", count: 4, max: 1,
			seen:    []NodeHealth{with(well(0), failsVerify), well(1), with(well(2), failsVerify), well(3)},
			batches: [][]int{{0}, {2}}},
		{name: "corrupted executables are node faults, one at a time", count: 3, max: 1,
			seen:    []NodeHealth{with(well(0), corrupt), with(well(1), corrupt), well(2)},
			batches: [][]int{{0}, {1}}},
		{name: "a crash beside a corrupted executable: node faults", count: 2, max: 1,
			seen:    []NodeHealth{with(well(0), crashed), with(well(1), corrupt)},
			batches: [][]int{{0}, {1}}},
		{name: "max_unavailable 2 replaces two serving nodes at once", count: 3, max: 2,
			seen:    []NodeHealth{with(well(0), corrupt), with(well(1), corrupt), with(well(2), corrupt)},
			batches: [][]int{{0, 1}, {2}}},
		{name: "dead nodes first, all at once; then serving ones", count: 4, max: 1,
			seen:    []NodeHealth{with(well(0), corrupt), with(well(1), gone), with(well(2), func(h *NodeHealth) { h.AgentOK = false }), with(well(3), corrupt)},
			batches: [][]int{{1, 2}, {0}, {3}}},
		{name: "a missing node is in the first batch", count: 3, max: 1,
			seen:    []NodeHealth{with(well(0), corrupt), well(1)},
			batches: [][]int{{2}, {0}}},
		{name: "gone agents do not count toward a version fault", count: 3, max: 1,
			seen:  []NodeHealth{with(well(0), gone), with(well(1), gone), with(well(2), failsVerify)},
			fault: "on 1 of 1 nodes"},
		{name: "another version failing is not this release's fault", count: 2, max: 1,
			seen:    []NodeHealth{with(well(0), func(h *NodeHealth) { h.ServingVersion = "v0"; h.Verdict.Health = 0 }), well(1)},
			batches: [][]int{{0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PlanRepair(tt.count, tt.seen, RepairPolicy{Current: cur, MaxUnavailable: tt.max, VersionFaults: true})
			if tt.fault != "" {
				require.Contains(t, p.VersionFault, tt.fault)
				require.Contains(t, p.VersionFault, "roll back (dflow rollback)")
				require.True(t, p.Empty(), "a version fault destroys nothing")
				require.Empty(t, p.Batches)
				return
			}
			require.Empty(t, p.VersionFault)
			require.Equal(t, tt.batches, p.Batches)
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
