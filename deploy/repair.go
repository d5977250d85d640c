package deploy

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// NodeHealth is what repair saw of one node: whether it is recorded and
// live, whether its agent answers, what it serves, whether the serving
// process is alive and its executable is the one that was built, and
// verify's verdict.
type NodeHealth struct {
	Index    int  `json:"index"`
	Node     Node `json:"node"` // the recorded node (the live one when unrecorded)
	Recorded bool `json:"recorded"`
	Live     bool `json:"live"` // the VM backend lists it
	// Stale: the recorded and the live node at the index are different
	// incarnations (Node.ID is then "": whatever is at the index goes).
	Stale bool `json:"stale,omitempty"`
	// AgentOK: the agent answered an authenticated call.
	AgentOK bool `json:"agent_ok"`
	// Serving is the process behind the public port ("" when none).
	Serving string `json:"serving,omitempty"`
	// ServingVersion is the version of Serving.
	ServingVersion string `json:"serving_version,omitempty"`
	// ServingAlive: the serving process runs (not exited or failed).
	ServingAlive bool `json:"serving_alive"`
	// Checksum is "ok", "mismatch", "missing" (the executable is gone) or
	// "" (not checked: nothing serves, or the build is unknown).
	Checksum string `json:"checksum,omitempty"`
	// Verdict is verify's answer; Verified tells whether it was asked.
	Verdict  Verdict `json:"verdict"`
	Verified bool    `json:"verified"`
	// Detail says what went wrong reaching the agent.
	Detail string `json:"detail,omitempty"`
}

// Checksum results in NodeHealth.Checksum.
const (
	ChecksumOK       = "ok"
	ChecksumMismatch = "mismatch"
	ChecksumMissing  = "missing"
)

// Healthy tells whether the node needs nothing: live, its agent answers,
// and, when it serves, the serving process is alive, its executable is
// intact and verify passes.
func (h NodeHealth) Healthy() bool {
	return h.problem() == ""
}

// RepairProblem says why repair would replace the node ("" when it would
// not).
func RepairProblem(h NodeHealth) string { return h.problem() }

// problem says why the node must be replaced ("" when it need not).
func (h NodeHealth) problem() string {
	switch {
	case h.Stale:
		return "the live node is another incarnation than the recorded one"
	case !h.Live:
		return "recorded but gone"
	case !h.AgentOK:
		return "its agent does not answer: " + h.Detail
	case h.Serving == "":
		return ""
	case !h.ServingAlive:
		return fmt.Sprintf("its serving process %s died", h.Serving)
	case h.Checksum == ChecksumMismatch:
		return fmt.Sprintf("the executable of %s on its disk is not the one that was built", h.Serving)
	case h.Checksum == ChecksumMissing:
		return fmt.Sprintf("the executable of %s is missing from its disk", h.Serving)
	case h.Verified && !h.Verdict.Healthy():
		s := fmt.Sprintf("verify failed: health %.0f < threshold %.0f", h.Verdict.Health, h.Verdict.Threshold)
		if h.Verdict.Detail != "" {
			s += " (" + h.Verdict.Detail + ")"
		}
		return s
	}
	return ""
}

// RepairAction is one thing repair does to one node.
type RepairAction struct {
	Index int `json:"index"`
	// Node is what is destroyed (Destroy); its ID is "" when the recorded
	// and live incarnations disagree: whatever is at the index goes.
	Node   Node   `json:"node,omitzero"`
	Reason string `json:"reason"`
}

// RepairPlan is what one repair round does.
type RepairPlan struct {
	// Destroy are the nodes to destroy (or, when gone, to forget).
	Destroy []RepairAction `json:"destroy,omitempty"`
	// Create are the indices to create, ascending.
	Create []int `json:"create,omitempty"`
	// Provision are the indices that get the current release through the
	// zero-downtime path (every created index, and live nodes that serve
	// nothing while others serve), ascending.
	Provision []int `json:"provision,omitempty"`
	// Notes are things seen and left alone.
	Notes []string `json:"notes,omitempty"`
	// Batches orders the work: each is a set of indices (ascending) that
	// are destroyed, created and provisioned together before the next
	// batch begins. The first holds the nodes that serve nothing anyway
	// (gone, agent silent, process dead, missing); the nodes that still
	// serve follow, at most RepairPolicy.MaxUnavailable at a time. Nil
	// (no bound): everything at once.
	Batches [][]int `json:"batches,omitempty"`
	// VersionFault, when set, says the current release itself is
	// unhealthy (it fails on a majority of the nodes that run it): the
	// plan then destroys, creates and provisions nothing.
	VersionFault string `json:"version_fault,omitempty"`
}

// Empty tells whether the plan does nothing.
func (p RepairPlan) Empty() bool {
	return len(p.Destroy) == 0 && len(p.Create) == 0 && len(p.Provision) == 0
}

// RepairPolicy is what PlanRepair decides by besides what it saw.
type RepairPolicy struct {
	// Current is the cluster's current release (nil: none yet).
	Current *Release
	// MaxUnavailable bounds how many nodes that still serve are taken out
	// of service at once (Repair.Unavailable); 0: no bound, one batch (as
	// repair did before the bound).
	MaxUnavailable int
	// VersionFaults tells a version fault from node faults (see
	// RepairPlan.VersionFault); false: every failing node is a node fault
	// (as repair did before).
	VersionFaults bool
}

// inService tells whether the node at h still serves requests, however
// badly (its serving process is alive), so that replacing it takes
// capacity away.
func (h NodeHealth) inService() bool {
	return !h.Stale && h.Live && h.AgentOK && h.Serving != "" && h.ServingAlive
}

// versionFault finds a version fault: the current release fails (verify
// fails, or its process died) on a majority of the nodes below count that
// run it and whose agents answer. A corrupted executable is the node's
// fault, not the version's: such a node counts as running the release,
// not as failing.
func versionFault(count int, seen []NodeHealth, cur *Release) string {
	if cur == nil {
		return ""
	}
	running, failing := 0, 0
	var why []string
	for _, h := range seen {
		if h.Index >= count || h.Stale || !h.Live || !h.AgentOK || h.Serving == "" || h.ServingVersion != cur.Version {
			continue
		}
		running++
		if h.Checksum == ChecksumMismatch || h.Checksum == ChecksumMissing {
			continue // the node's fault: it runs the release, but not as built
		}
		if !h.ServingAlive || (h.Verified && !h.Verdict.Healthy()) {
			failing++
			why = append(why, fmt.Sprintf("node %d: %s", h.Index, h.problem()))
		}
	}
	if failing == 0 || 2*failing <= running {
		return ""
	}
	return fmt.Sprintf("release %d (version %s) is unhealthy on %d of %d nodes (%s): roll back (dflow rollback) or fix it and deploy",
		cur.ID, ShortVersion(cur.Version), failing, running, strings.Join(why, "; "))
}

// PlanRepair decides a repair round from the desired count, what was seen
// of every recorded or live node, and whether the cluster has a current
// release:
//
//   - every index in [0, count) that is missing (not recorded, not live, or
//     recorded and live as different incarnations) is created, after
//     whatever is left of it is destroyed;
//   - a node whose agent does not answer, whose serving process died, whose
//     executable is not the one built, or that fails verify is destroyed
//     and created again;
//   - with a current release, every created node is provisioned with it,
//     and so is a live node that serves nothing while others serve (when
//     none serves, the cluster was stopped on purpose: left alone);
//   - above count, recorded nodes that are gone are forgotten; live ones
//     are left to `dflow set`.
//
// With pol.VersionFaults, a release that fails on most of its nodes is a
// version fault: nothing is planned but the fault. With pol.MaxUnavailable,
// the work is ordered in Batches.
func PlanRepair(count int, seen []NodeHealth, pol RepairPolicy) RepairPlan {
	var p RepairPlan
	if pol.VersionFaults {
		if f := versionFault(count, seen, pol.Current); f != "" {
			p.VersionFault = f
			return p
		}
	}
	hasCurrent := pol.Current != nil
	at := map[int]NodeHealth{}
	anyServing := false
	for _, h := range seen {
		at[h.Index] = h
		if h.Live && h.AgentOK && h.Serving != "" {
			anyServing = true
		}
	}
	provision := map[int]bool{}
	for i := 0; i < count; i++ {
		h, ok := at[i]
		switch {
		case !ok:
			p.Create = append(p.Create, i)
			provision[i] = true
		case h.problem() != "":
			p.Destroy = append(p.Destroy, RepairAction{Index: i, Node: h.Node, Reason: h.problem()})
			p.Create = append(p.Create, i)
			provision[i] = true
		case !h.Recorded:
			// Live and well but unknown to the store: create adopts it
			// (it is idempotent) and records it.
			p.Create = append(p.Create, i)
			provision[i] = true
			p.Notes = append(p.Notes, fmt.Sprintf("node %d runs but was not recorded: adopted", i))
		case h.Serving == "" && anyServing:
			provision[i] = true
		case h.Serving == "":
			p.Notes = append(p.Notes, fmt.Sprintf("node %d serves nothing (the cluster was stopped): left alone", i))
		}
	}
	for _, h := range seen {
		if h.Index < count {
			continue
		}
		if h.Recorded && !h.Live {
			p.Destroy = append(p.Destroy, RepairAction{Index: h.Index, Node: h.Node, Reason: "recorded but gone (above the count)"})
			continue
		}
		p.Notes = append(p.Notes, fmt.Sprintf("node %d is above the desired count %d: left to `dflow set`", h.Index, count))
	}
	if hasCurrent {
		for i := 0; i < count; i++ {
			if provision[i] {
				p.Provision = append(p.Provision, i)
			}
		}
	}
	sort.Slice(p.Destroy, func(a, b int) bool { return p.Destroy[a].Index < p.Destroy[b].Index })
	if pol.MaxUnavailable > 0 {
		p.Batches = batches(p, at, pol.MaxUnavailable)
	}
	return p
}

// batches orders p's work: first every index whose node serves nothing
// anyway, then the ones that still serve, n at a time.
func batches(p RepairPlan, at map[int]NodeHealth, n int) [][]int {
	var touched []int
	for _, a := range p.Destroy {
		touched = append(touched, a.Index)
	}
	touched = append(append(touched, p.Create...), p.Provision...)
	sort.Ints(touched)
	touched = slices.Compact(touched)
	var out, serving []int
	for _, i := range touched {
		// A node that serves and is only provisioned or adopted loses no
		// capacity; one that serves and is destroyed does.
		if h, ok := at[i]; ok && h.inService() && p.destroys(i) {
			serving = append(serving, i)
			continue
		}
		out = append(out, i)
	}
	var bs [][]int
	if len(out) > 0 {
		bs = append(bs, out)
	}
	for len(serving) > 0 {
		k := min(n, len(serving))
		bs = append(bs, serving[:k])
		serving = serving[k:]
	}
	return bs
}

// destroys tells whether p destroys the node at index i.
func (p RepairPlan) destroys(i int) bool {
	for _, a := range p.Destroy {
		if a.Index == i {
			return true
		}
	}
	return false
}

// RepairSubjects pairs the recorded and the live nodes by index, ascending:
// the NodeHealth of each with Index, Node, Recorded, Live and Stale set (the
// rest is for the caller to find out).
func RepairSubjects(recorded, live []Node) []NodeHealth {
	rec, liv := byIndex(recorded), byIndex(live)
	var out []NodeHealth
	for _, n := range append(append([]Node(nil), recorded...), live...) {
		r, okR := rec[n.Index]
		l, okL := liv[n.Index]
		if !okR && !okL {
			continue // seen already
		}
		h := NodeHealth{Index: n.Index, Recorded: okR, Live: okL}
		switch {
		case okR && okL && r.ID != l.ID:
			h.Stale, h.Node = true, r
			h.Node.ID = ""
		case okR:
			h.Node = r
		default:
			h.Node = l
		}
		out = append(out, h)
		delete(rec, n.Index)
		delete(liv, n.Index)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Index < out[b].Index })
	return out
}

// RepairRecord is one repair round that did something, kept in the Store.
type RepairRecord struct {
	At        time.Time      `json:"at"`
	Workflow  string         `json:"workflow"`
	Destroyed []RepairAction `json:"destroyed,omitempty"`
	Created   []int          `json:"created,omitempty"`
	// Provisioned are the indices that got Version.
	Provisioned []int  `json:"provisioned,omitempty"`
	Version     string `json:"version,omitempty"`
	// Whole: afterwards every node up to the count was live and healthy.
	Whole bool   `json:"whole"`
	Error string `json:"error,omitempty"`
}

// MaxRepairs bounds State.Repairs (the oldest go first).
const MaxRepairs = 100

// AddRepair records r, dropping the oldest beyond MaxRepairs.
func (s *State) AddRepair(r RepairRecord) {
	s.Repairs = append(append([]RepairRecord(nil), s.Repairs...), r)
	if len(s.Repairs) > MaxRepairs {
		s.Repairs = s.Repairs[len(s.Repairs)-MaxRepairs:]
	}
}

// ChaosRecord is one node chaos-monkey destroyed, and when the cluster was
// whole and healthy again (set by repair).
type ChaosRecord struct {
	At       time.Time `json:"at"`
	Index    int       `json:"index"`
	NodeID   string    `json:"node_id"`
	Address  string    `json:"address"`
	Workflow string    `json:"workflow,omitempty"`
	// RecoveredAt is when repair found every node up to the count live and
	// healthy again; zero until then.
	RecoveredAt     time.Time `json:"recovered_at,omitzero"`
	RecoverySeconds float64   `json:"recovery_seconds,omitempty"`
}

// MaxChaos bounds State.Chaos (the oldest go first).
const MaxChaos = 200

// AddChaos records a kill, dropping the oldest beyond MaxChaos.
func (s *State) AddChaos(c ChaosRecord) {
	s.Chaos = append(append([]ChaosRecord(nil), s.Chaos...), c)
	if len(s.Chaos) > MaxChaos {
		s.Chaos = s.Chaos[len(s.Chaos)-MaxChaos:]
	}
}

// MarkRecovered sets the recovery time of every kill at or before at that
// has none yet, and returns how many it set.
func (s *State) MarkRecovered(at time.Time) int {
	n := 0
	s.Chaos = append([]ChaosRecord(nil), s.Chaos...)
	for i := range s.Chaos {
		c := &s.Chaos[i]
		if c.RecoveredAt.IsZero() && !c.At.After(at) {
			c.RecoveredAt = at
			c.RecoverySeconds = at.Sub(c.At).Seconds()
			n++
		}
	}
	return n
}

// Recovery summarizes recovery times (MTTR) of the kills that recovered.
type Recovery struct {
	Kills     int     `json:"kills"`
	Recovered int     `json:"recovered"`
	Mean      float64 `json:"mean_seconds"`
	P50       float64 `json:"p50_seconds"`
	Max       float64 `json:"max_seconds"`
}

// SummarizeRecovery computes mean, median and max recovery seconds.
func SummarizeRecovery(kills []ChaosRecord) Recovery {
	r := Recovery{Kills: len(kills)}
	var secs []float64
	for _, c := range kills {
		if !c.RecoveredAt.IsZero() {
			secs = append(secs, c.RecoverySeconds)
		}
	}
	r.Recovered = len(secs)
	if len(secs) == 0 {
		return r
	}
	sort.Float64s(secs)
	sum := 0.0
	for _, s := range secs {
		sum += s
	}
	r.Mean, r.Max = sum/float64(len(secs)), secs[len(secs)-1]
	if n := len(secs); n%2 == 1 {
		r.P50 = secs[n/2]
	} else {
		r.P50 = (secs[n/2-1] + secs[n/2]) / 2
	}
	return r
}
