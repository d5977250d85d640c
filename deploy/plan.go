package deploy

import "sort"

// SetPlan is what converging the cluster to a node count must do.
type SetPlan struct {
	// Create are the indices to create or bring back, ascending.
	Create []int `json:"create"`
	// Destroy are the nodes to destroy, highest index first. A node whose
	// recorded and live incarnations disagree has an empty ID: whatever is
	// at its index goes.
	Destroy []Node `json:"destroy"`
}

// PlanSet plans `set count`: every index in [0, count) that is not both
// recorded and live (same incarnation) is created (the VM backend's Create is
// idempotent, so a live but unrecorded node is adopted and a recorded but
// dead one is brought back); every recorded or live node at an index >=
// count is destroyed.
func PlanSet(recorded, live []Node, count int) SetPlan {
	rec := byIndex(recorded)
	liv := byIndex(live)
	var p SetPlan
	for i := 0; i < count; i++ {
		r, okR := rec[i]
		l, okL := liv[i]
		if !okR || !okL || r.ID != l.ID {
			p.Create = append(p.Create, i)
		}
	}
	seen := map[int]bool{}
	for _, n := range append(append([]Node(nil), live...), recorded...) {
		if n.Index < count || seen[n.Index] {
			continue
		}
		seen[n.Index] = true
		r, okR := rec[n.Index]
		l, okL := liv[n.Index]
		if okR && okL && r.ID != l.ID {
			n.ID = ""
		}
		p.Destroy = append(p.Destroy, n)
	}
	sort.Slice(p.Destroy, func(a, b int) bool { return p.Destroy[a].Index > p.Destroy[b].Index })
	return p
}

func byIndex(nodes []Node) map[int]Node {
	m := make(map[int]Node, len(nodes))
	for _, n := range nodes {
		m[n.Index] = n
	}
	return m
}

// Batches splits items into consecutive groups of at most size (size < 1
// counts as 1).
func Batches[T any](items []T, size int) [][]T {
	if size < 1 {
		size = 1
	}
	var out [][]T
	for len(items) > 0 {
		n := min(size, len(items))
		out = append(out, items[:n])
		items = items[n:]
	}
	return out
}
