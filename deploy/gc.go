package deploy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
)

// GCPolicy says which versions gc keeps: the versions of the Count newest
// succeeded releases and/or those used at or after Since. Whatever the
// policy, gc keeps the current release's version, every version that runs
// on a node, the newest build, and (with Count) the versions the next
// Count-1 `rollback`s would go back to.
type GCPolicy struct {
	// Count keeps the versions of the Count newest succeeded releases
	// (0: no limit by count).
	Count int `json:"count,omitempty"`
	// Since keeps the versions released or built at or after it (zero: no
	// limit by date).
	Since time.Time `json:"since,omitzero"`
}

// ErrNoPolicy: gc was given neither a count nor a date.
var ErrNoPolicy = errors.New("gc: say what to keep: --count N, --older DATE|DURATION, or both")

// Validate checks the policy.
func (p GCPolicy) Validate() error {
	switch {
	case p.Count < 0:
		return fmt.Errorf("gc: --count %d: want a whole number >= 1", p.Count)
	case p.Count == 0 && p.Since.IsZero():
		return ErrNoPolicy
	}
	return nil
}

// GCInventory is what holds which bundle now.
type GCInventory struct {
	Nodes []GCNodeInventory `json:"nodes"`
	// Store is what the control plane's artifact store holds.
	Store []string `json:"store"`
}

// GCNodeInventory is what one node holds and runs.
type GCNodeInventory struct {
	Index int `json:"index"`
	// Held are the digests its agent holds.
	Held []string `json:"held"`
	// Running are the digests its live processes run from.
	Running []string `json:"running"`
}

// GCVersion is one bundle gc considered.
type GCVersion struct {
	Digest   string    `json:"digest"`
	Version  string    `json:"version,omitempty"` // "" when no release or build records it
	LastUsed time.Time `json:"last_used,omitzero"`
	Releases []int     `json:"releases,omitempty"` // IDs of the releases that shipped it
	Nodes    []int     `json:"nodes,omitempty"`    // the nodes that hold it
	InStore  bool      `json:"in_store"`           // the control plane's artifact store holds it
	// Keep says why it stays (empty when it goes).
	Keep []string `json:"keep,omitempty"`
}

// GCPlan is what gc removes and keeps.
type GCPlan struct {
	Keep   []GCVersion `json:"keep"`
	Remove []GCVersion `json:"remove"`
	// LostRollbacks are the releases successive `rollback`s would go back
	// to, in order, whose bundle goes (or went before): rolling back that
	// far fails.
	LostRollbacks []Release `json:"lost_rollbacks,omitempty"`
}

// RollbackChain is the releases successive `rollback`s go back to, in
// order: what served before the current release, newest first (Served).
func RollbackChain(s State) []Release {
	stack, _ := Served(s)
	var chain []Release
	for i := len(stack) - 2; i >= 0; i-- {
		chain = append(chain, stack[i])
	}
	return chain
}

// PlanGC picks what gc removes from the nodes and the control plane's
// artifact store. It never removes the current release's version, a
// version a live process runs from, the newest build, or, with p.Count, the
// versions the next p.Count-1 rollbacks go back to.
func PlanGC(s State, inv GCInventory, p GCPolicy) (GCPlan, error) {
	if err := p.Validate(); err != nil {
		return GCPlan{}, err
	}
	vs := map[string]*GCVersion{}
	var order []string // digests in the order first seen
	get := func(d string) *GCVersion {
		v, ok := vs[d]
		if !ok {
			v = &GCVersion{Digest: d}
			vs[d] = v
			order = append(order, d)
		}
		return v
	}
	for _, r := range s.Releases {
		v := get(r.Digest)
		v.Version = r.Version
		v.Releases = append(v.Releases, r.ID)
		if r.At.After(v.LastUsed) {
			v.LastUsed = r.At
		}
	}
	for _, t := range s.Builds {
		v := get(t.Digest)
		if v.Version == "" {
			v.Version = t.Version
		}
		if t.BuiltAt.After(v.LastUsed) {
			v.LastUsed = t.BuiltAt
		}
	}
	nodes := append([]GCNodeInventory(nil), inv.Nodes...)
	sort.Slice(nodes, func(a, b int) bool { return nodes[a].Index < nodes[b].Index })
	for _, n := range nodes {
		for _, d := range n.Held {
			v := get(d)
			v.Nodes = append(v.Nodes, n.Index)
		}
	}
	for _, d := range inv.Store {
		get(d).InStore = true
	}
	keep := func(d, why string) {
		if v, ok := vs[d]; ok {
			v.Keep = append(v.Keep, why)
		}
	}

	if cur, ok := s.CurrentRelease(); ok {
		keep(cur.Digest, fmt.Sprintf("current release %d", cur.ID))
	}
	for _, n := range nodes {
		for _, d := range n.Running {
			v := get(d)
			if why := fmt.Sprintf("runs on node %d", n.Index); !slices.Contains(v.Keep, why) {
				v.Keep = append(v.Keep, why)
			}
		}
	}
	if n := len(s.Builds); n > 0 {
		keep(s.Builds[n-1].Digest, "newest build")
	}
	if p.Count > 0 {
		kept := map[string]bool{}
		for i := len(s.Releases) - 1; i >= 0 && len(kept) < p.Count; i-- {
			r := s.Releases[i]
			if r.Outcome != OutcomeSucceeded || kept[r.Digest] {
				continue
			}
			kept[r.Digest] = true
			keep(r.Digest, fmt.Sprintf("among the %d newest releases", p.Count))
		}
	}
	if !p.Since.IsZero() {
		for _, d := range order {
			if v := vs[d]; !v.LastUsed.IsZero() && !v.LastUsed.Before(p.Since) {
				v.Keep = append(v.Keep, "used since "+p.Since.UTC().Format(time.RFC3339))
			}
		}
	}
	chain := RollbackChain(s)
	if p.Count > 0 {
		for i, r := range chain[:min(p.Count-1, len(chain))] {
			keep(r.Digest, fmt.Sprintf("rollback target %d", i+1))
		}
	}

	var plan GCPlan
	gone := map[string]bool{}
	for _, d := range order {
		v := vs[d]
		if len(v.Nodes) == 0 && !v.InStore {
			gone[d] = true // removed before: nothing to keep or remove
			continue
		}
		if len(v.Keep) > 0 {
			plan.Keep = append(plan.Keep, *v)
		} else {
			plan.Remove = append(plan.Remove, *v)
			gone[v.Digest] = true
		}
	}
	for _, r := range chain {
		if gone[r.Digest] {
			plan.LostRollbacks = append(plan.LostRollbacks, r)
		}
	}
	byUse := func(vs []GCVersion) {
		sort.Slice(vs, func(a, b int) bool {
			if !vs[a].LastUsed.Equal(vs[b].LastUsed) {
				return vs[a].LastUsed.After(vs[b].LastUsed)
			}
			return vs[a].Digest < vs[b].Digest
		})
	}
	byUse(plan.Keep)
	byUse(plan.Remove)
	return plan, nil
}

// ParseSince reads --older: a date (2006-01-02), a time (RFC 3339) or a
// duration before now (72h, 7d, 2w).
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if n := len(s); n > 1 && (s[n-1] == 'd' || s[n-1] == 'w') {
		var k int
		if _, err := fmt.Sscanf(s[:n-1], "%d", &k); err == nil && k > 0 && fmt.Sprint(k) == s[:n-1] {
			day := 24 * time.Hour
			if s[n-1] == 'w' {
				day *= 7
			}
			return now.Add(-time.Duration(k) * day), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("gc: --older %q: want a date (2026-01-31), a time (RFC 3339), or a duration before now (72h, 7d, 2w)", s)
}
