package controlplane

import (
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/stretchr/testify/require"
)

// TestPickProcess: whose log `dflow logs` shows on a node.
func TestPickProcess(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	ps := []api.ProcessInfo{ // oldest first, as the agent lists them
		{ID: "r1", Version: "aaa111", State: api.StateStopped, StartedAt: at(1)},
		{ID: "r2", Version: "bbb222", State: api.StateDraining, StartedAt: at(2)},
		{ID: "r3", Version: "ccc333", State: api.StateServing, StartedAt: at(3)},
		{ID: "r4", Version: "ddd444", State: api.StateFailed, StartedAt: at(4)},
	}
	for _, tc := range []struct {
		name    string
		l       api.ProcessList
		version string
		want    string // "" for none
	}{
		{"the serving one", api.ProcessList{Serving: "r3", Processes: ps}, "", "r3"},
		{"none serving: the newest alive", api.ProcessList{Processes: ps}, "", "r3"},
		{"nothing alive: the newest, to see why", api.ProcessList{Processes: []api.ProcessInfo{ps[0], ps[3]}}, "", "r4"},
		{"a version by prefix, serving or not", api.ProcessList{Serving: "r3", Processes: ps}, "bbb", "r2"},
		{"a stopped version", api.ProcessList{Serving: "r3", Processes: ps}, "aaa111", "r1"},
		{"an unknown version", api.ProcessList{Serving: "r3", Processes: ps}, "eee", ""},
		{"nothing at all", api.ProcessList{}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := pickProcess(tc.l, tc.version)
			require.Equal(t, tc.want != "", ok)
			require.Equal(t, tc.want, p.ID)
		})
	}
}

// TestPickNodes: the INDEX arguments of `dflow logs`.
func TestPickNodes(t *testing.T) {
	nodes := []deploy.Node{{Index: 2}, {Index: 0}, {Index: 1}}
	for _, tc := range []struct {
		name    string
		all     []deploy.Node
		indexes []int
		want    []int
		err     string
	}{
		{"every node, by index", nodes, nil, []int{0, 1, 2}, ""},
		{"the ones asked, in that order, once", nodes, []int{2, 0, 2}, []int{2, 0}, ""},
		{"an unknown index", nodes, []int{7}, nil, "no node 7; the nodes are 0, 1, 2"},
		{"no nodes", nil, nil, nil, "no nodes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pickNodes(tc.all, tc.indexes)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			var idx []int
			for _, n := range got {
				idx = append(idx, n.Index)
			}
			require.Equal(t, tc.want, idx)
		})
	}
}
