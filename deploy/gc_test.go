package deploy

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var gcT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func digestOf(v string) string { return fmt.Sprintf("%064s", v) }

// history makes a state from releases written "deploy:v1", "rollback:v2",
// "deploy!:v3" (failed); the current release is the last succeeded one
// (for a rollback, the deploy it went back to). Release i is at day i, and
// every deploy has its build.
func history(steps ...string) State {
	var s State
	for i, st := range steps {
		kind, v, _ := cut(st, ":")
		failed := kind[len(kind)-1] == '!'
		if failed {
			kind = kind[:len(kind)-1]
		}
		at := gcT0.Add(time.Duration(i) * 24 * time.Hour)
		r := Release{Kind: kind, Version: v, Digest: digestOf(v), At: at, Outcome: OutcomeSucceeded}
		if failed {
			r.Outcome = OutcomeFailed
		}
		if kind == ReleaseDeploy {
			s.AddBuild(Target{Version: v, Digest: digestOf(v), BuiltAt: at.Add(-time.Minute)})
		}
		if kind == ReleaseRollback {
			for j := len(s.Releases) - 1; j >= 0; j-- {
				if s.Releases[j].Kind == ReleaseDeploy && s.Releases[j].Version == v && s.Releases[j].Outcome == OutcomeSucceeded {
					r.Of = s.Releases[j].ID
					break
				}
			}
		}
		id := s.AddRelease(r)
		if !failed {
			s.Current = id
			if r.Of != 0 {
				s.Current = r.Of
			}
		}
	}
	return s
}

func cut(s, sep string) (string, string, bool) {
	for i := 0; i+len(sep) <= len(s); i++ {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

func versions(vs []GCVersion) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.Version)
	}
	sort.Strings(out)
	return out
}

func everywhere(s State, nodes ...int) GCInventory {
	var inv GCInventory
	for _, n := range nodes {
		inv.Nodes = append(inv.Nodes, GCNodeInventory{Index: n})
	}
	seen := map[string]bool{}
	for _, r := range s.Releases {
		if !seen[r.Digest] {
			seen[r.Digest] = true
			inv.Store = append(inv.Store, r.Digest)
			for i := range inv.Nodes {
				inv.Nodes[i].Held = append(inv.Nodes[i].Held, r.Digest)
			}
		}
	}
	if cur, ok := s.CurrentRelease(); ok {
		for i := range inv.Nodes {
			inv.Nodes[i].Running = []string{cur.Digest}
		}
	}
	return inv
}

func seven() State {
	return history("deploy:v1", "deploy:v2", "deploy:v3", "deploy:v4", "deploy:v5", "deploy:v6", "deploy:v7")
}

func TestPlanGC(t *testing.T) {
	tests := []struct {
		name   string
		state  State
		inv    func(s State) GCInventory
		policy GCPolicy
		keep   []string
		lost   []string // versions of the lost rollback targets, in order
		err    string
	}{
		{name: "7 releases, count 3", state: seven(), policy: GCPolicy{Count: 3}, keep: []string{"v5", "v6", "v7"}, lost: []string{"v4", "v3", "v2", "v1"}},
		{name: "count 1 keeps the current only", state: seven(), policy: GCPolicy{Count: 1}, keep: []string{"v7"}, lost: []string{"v6", "v5", "v4", "v3", "v2", "v1"}},
		{name: "count above the history keeps all", state: seven(), policy: GCPolicy{Count: 20}, keep: []string{"v1", "v2", "v3", "v4", "v5", "v6", "v7"}},
		{
			name: "after a rollback the next rollbacks stay", policy: GCPolicy{Count: 3},
			state: history("deploy:v1", "deploy:v2", "deploy:v3", "deploy:v4", "deploy:v5", "rollback:v4"),
			// newest releases: v4 (rollback), v5, v3; rollback chain from v4: v3, v2.
			keep: []string{"v2", "v3", "v4", "v5"}, lost: []string{"v1"},
		},
		{
			name: "failed releases do not count", policy: GCPolicy{Count: 2},
			state: history("deploy:v1", "deploy:v2", "deploy:v3", "deploy!:v4"),
			keep:  []string{"v2", "v3", "v4"}, // v4 is the newest build
			lost:  []string{"v1"},
		},
		{
			name: "a version running on a node stays", policy: GCPolicy{Count: 2}, state: seven(),
			inv: func(s State) GCInventory {
				inv := everywhere(s, 0, 1)
				inv.Nodes[1].Running = append(inv.Nodes[1].Running, digestOf("v2"))
				return inv
			},
			keep: []string{"v2", "v6", "v7"}, lost: []string{"v5", "v4", "v3", "v1"},
		},
		{name: "older than a date", state: seven(), policy: GCPolicy{Since: gcT0.Add(4 * 24 * time.Hour)}, keep: []string{"v5", "v6", "v7"}, lost: []string{"v4", "v3", "v2", "v1"}},
		{name: "count or date, whichever keeps more", state: seven(), policy: GCPolicy{Count: 2, Since: gcT0.Add(3 * 24 * time.Hour)}, keep: []string{"v4", "v5", "v6", "v7"}, lost: []string{"v3", "v2", "v1"}},
		{
			name: "unknown bundles go", state: seven(), policy: GCPolicy{Count: 7},
			inv: func(s State) GCInventory {
				inv := everywhere(s, 0)
				inv.Store = append(inv.Store, digestOf("stray"))
				inv.Nodes[0].Held = append(inv.Nodes[0].Held, digestOf("stray2"))
				return inv
			},
			keep: []string{"v1", "v2", "v3", "v4", "v5", "v6", "v7"},
		},
		{name: "nothing deployed", state: State{}, policy: GCPolicy{Count: 1}, keep: []string{}},
		{name: "no policy", state: seven(), err: "say what to keep"},
		{name: "negative count", state: seven(), policy: GCPolicy{Count: -1}, err: "--count -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := everywhere(tt.state, 0, 1)
			if tt.inv != nil {
				inv = tt.inv(tt.state)
			}
			p, err := PlanGC(tt.state, inv, tt.policy)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.keep, versions(p.Keep), "kept")
			var lost []string
			for _, r := range p.LostRollbacks {
				lost = append(lost, r.Version)
			}
			require.Equal(t, tt.lost, lost, "lost rollback targets")
			kept := map[string]bool{}
			for _, k := range p.Keep {
				require.NotEmpty(t, k.Keep)
				kept[k.Digest] = true
			}
			for _, r := range p.Remove {
				require.Empty(t, r.Keep)
				require.False(t, kept[r.Digest])
			}
			if cur, ok := tt.state.CurrentRelease(); ok {
				require.True(t, kept[cur.Digest], "the current release always stays")
			}
		})
	}
}

func TestPlanGCRemovesWhereTheBundleIs(t *testing.T) {
	s := seven()
	inv := everywhere(s, 0, 2)
	p, err := PlanGC(s, inv, GCPolicy{Count: 3})
	require.NoError(t, err)
	require.Len(t, p.Remove, 4)
	for _, r := range p.Remove {
		require.Equal(t, []int{0, 2}, r.Nodes)
		require.True(t, r.InStore)
	}
	require.Equal(t, "v4", p.Remove[0].Version, "newest first")
}

func TestRollbackChain(t *testing.T) {
	var got []string
	for _, r := range RollbackChain(history("deploy:v1", "deploy:v2", "deploy:v1", "deploy:v3")) {
		got = append(got, r.Version)
	}
	// From v3 (release 4): release 3 (v1), release 2 (v2), release 1 (v1).
	require.Equal(t, []string{"v1", "v2", "v1"}, got)
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"72h":                  now.Add(-72 * time.Hour),
		"7d":                   now.Add(-7 * 24 * time.Hour),
		"2w":                   now.Add(-14 * 24 * time.Hour),
		"2026-03-01T00:00:00Z": time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := ParseSince(in, now)
		require.NoError(t, err, in)
		require.True(t, want.Equal(got), "%s: %s", in, got)
	}
	d, err := ParseSince("2026-02-01", now)
	require.NoError(t, err)
	require.Equal(t, "2026-02-01", d.Format("2006-01-02"))
	for _, bad := range []string{"yesterday", "-5h", "0d", "7x", "2026-13-01", "d"} {
		_, err := ParseSince(bad, now)
		require.ErrorContains(t, err, "--older", bad)
	}
}
