package deploy

import "time"

// MaxEvents bounds how many events a Progress keeps (the oldest go first).
const MaxEvents = 1000

// Event is one line of a workflow's progress.
type Event struct {
	At   time.Time `json:"at"`
	Node int       `json:"node"` // -1: the cluster as a whole
	Msg  string    `json:"msg"`
}

// Progress is what a running workflow reports to the CLI (query "progress")
// and to the Web UI (its current details).
type Progress struct {
	Op    string `json:"op"`
	Step  string `json:"step"`
	Done  int    `json:"done"`
	Total int    `json:"total"`
	// Seq counts every event ever added, so a follower that saw Seq n prints
	// the events after it even when old ones were dropped.
	Seq    int     `json:"seq"`
	Events []Event `json:"events"`
	// Paused: a deploy waits for `dflow deploy resume`.
	Paused bool `json:"paused,omitempty"`
	// Stuck are the node steps that exhausted their retries and wait for
	// an operator's decision (`dflow deploy retry | skip-node | abort`).
	Stuck []StuckStep `json:"stuck,omitempty"`
}

// StuckStep is a node step (list, copy, start, stop, switch) that
// exhausted its retries: the rollout waits for a decision until Deadline,
// then takes Action (deploy.stuck_action).
type StuckStep struct {
	Node     int       `json:"node"`
	Step     string    `json:"step"`
	Error    string    `json:"error"` // "copy to node 0 failed after 5 attempts: ..."
	Since    time.Time `json:"since"`
	Deadline time.Time `json:"deadline"`
	Action   string    `json:"action"` // StuckAbort or StuckSkip
}

// Add appends an event, dropping the oldest beyond MaxEvents.
func (p *Progress) Add(at time.Time, node int, msg string) {
	p.Seq++
	p.Events = append(p.Events, Event{At: at, Node: node, Msg: msg})
	if len(p.Events) > MaxEvents {
		p.Events = append([]Event(nil), p.Events[len(p.Events)-MaxEvents:]...)
	}
}

// Since returns the events a follower that has seen seq events has not.
func (p Progress) Since(seq int) []Event {
	n := p.Seq - seq
	if n <= 0 {
		return nil
	}
	if n > len(p.Events) {
		n = len(p.Events)
	}
	return p.Events[len(p.Events)-n:]
}
