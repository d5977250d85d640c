package deploy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func nodes(idx ...int) []Node {
	var out []Node
	for _, i := range idx {
		out = append(out, Node{Index: i, ID: "n" + string(rune('0'+i))})
	}
	return out
}

func TestPlanSet(t *testing.T) {
	tests := []struct {
		name        string
		recorded    []Node
		live        []Node
		count       int
		create      []int
		destroy     []int
		destroyNoID []int // indices destroyed with an empty ID
	}{
		{name: "empty to 3", count: 3, create: []int{0, 1, 2}},
		{name: "3 to 3 is a no-op", recorded: nodes(0, 1, 2), live: nodes(0, 1, 2), count: 3},
		{name: "3 to 1 destroys highest first", recorded: nodes(0, 1, 2), live: nodes(0, 1, 2), count: 1, destroy: []int{2, 1}},
		{name: "3 to 0", recorded: nodes(0, 1, 2), live: nodes(0, 1, 2), count: 0, destroy: []int{2, 1, 0}},
		{name: "dead node is brought back", recorded: nodes(0, 1, 2), live: nodes(0, 2), count: 3, create: []int{1}},
		{name: "unrecorded live node is adopted", recorded: nodes(0), live: nodes(0, 1), count: 2, create: []int{1}},
		{name: "hole is filled", recorded: nodes(0, 2), live: nodes(0, 2), count: 3, create: []int{1}},
		{name: "orphan above count is destroyed", recorded: nodes(0), live: nodes(0, 7), count: 1, destroy: []int{7}},
		{name: "dead recorded node above count is forgotten", recorded: nodes(0, 4), live: nodes(0), count: 1, destroy: []int{4}},
		{
			name: "disagreeing incarnations above count go by index", count: 1,
			recorded: nodes(0, 3), live: append(nodes(0), Node{Index: 3, ID: "other"}),
			destroy: []int{3}, destroyNoID: []int{3},
		},
		{
			name: "disagreeing incarnation below count is recreated", count: 2,
			recorded: nodes(0, 1), live: append(nodes(0), Node{Index: 1, ID: "other"}),
			create: []int{1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PlanSet(tt.recorded, tt.live, tt.count)
			require.Equal(t, tt.create, p.Create)
			var got, noID []int
			for _, n := range p.Destroy {
				got = append(got, n.Index)
				if n.ID == "" {
					noID = append(noID, n.Index)
				}
			}
			require.Equal(t, tt.destroy, got)
			require.Equal(t, tt.destroyNoID, noID)
		})
	}
}

func TestBatches(t *testing.T) {
	tests := []struct {
		items []int
		size  int
		want  [][]int
	}{
		{nil, 3, nil},
		{[]int{1, 2, 3, 4, 5}, 2, [][]int{{1, 2}, {3, 4}, {5}}},
		{[]int{1, 2}, 5, [][]int{{1, 2}}},
		{[]int{1, 2}, 0, [][]int{{1}, {2}}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, Batches(tt.items, tt.size))
	}
}

func TestProgressSince(t *testing.T) {
	var p Progress
	for i := 0; i < MaxEvents+10; i++ {
		p.Add(time.Time{}, i, "e")
	}
	require.Len(t, p.Events, MaxEvents)
	require.Len(t, p.Since(0), MaxEvents, "a new follower gets what is kept")
	require.Len(t, p.Since(p.Seq-3), 3)
	require.Empty(t, p.Since(p.Seq))
	require.Equal(t, MaxEvents+9, p.Events[len(p.Events)-1].Node)
}
