package deploy

import "time"

// Verdict is verify's answer for one node: the seed's
// `verify :: Node -> (health, threshold)`. The node is healthy iff
// Health >= Threshold.
type Verdict struct {
	Index     int       `json:"index"`
	Health    float64   `json:"health"`
	Threshold float64   `json:"threshold"`
	At        time.Time `json:"at"`
	// Source says what produced it: "probe" (the built-in probe) or the
	// verify program's path.
	Source string `json:"source"`
	// Detail is a short human explanation: what failed, the program's
	// stderr, ...
	Detail string `json:"detail,omitempty"`
}

// Healthy tells whether the node passed: health >= threshold.
func (v Verdict) Healthy() bool { return v.Health >= v.Threshold }
