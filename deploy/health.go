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

// MaxVerdicts bounds the verdicts kept per node in State.Health.
const MaxVerdicts = 100

// AddVerdict records v, keeping the newest MaxVerdicts of its node.
func (s *State) AddVerdict(v Verdict) {
	s.Health = append(s.Health, v)
	n := 0
	for i := len(s.Health) - 1; i >= 0; i-- {
		if s.Health[i].Index == v.Index {
			n++
			if n > MaxVerdicts {
				s.Health = append(s.Health[:i], s.Health[i+1:]...)
			}
		}
	}
}

// HealthStats summarize a node's recent verdicts: what `dflow health` shows.
type HealthStats struct {
	Index   int     `json:"index"`
	Samples int     `json:"samples"`
	Current float64 `json:"current"`
	Min     float64 `json:"min"`
	Mean    float64 `json:"mean"`
	Max     float64 `json:"max"`
	// Threshold is the newest verdict's threshold; Healthy, its verdict.
	Threshold float64 `json:"threshold"`
	Healthy   bool    `json:"healthy"`
	// Trend is the mean of the newer half of the window minus the mean of
	// the older half: > 0 rising, < 0 falling.
	Trend float64   `json:"trend"`
	Since time.Time `json:"since"`
	Last  time.Time `json:"last"`
}

// Stats summarizes the newest window verdicts of every node (window <= 0:
// all kept), sorted by index.
func Stats(verdicts []Verdict, window int) []HealthStats {
	byNode := map[int][]Verdict{}
	var order []int
	for _, v := range verdicts {
		if _, ok := byNode[v.Index]; !ok {
			order = append(order, v.Index)
		}
		byNode[v.Index] = append(byNode[v.Index], v)
	}
	sortInts(order)
	var out []HealthStats
	for _, idx := range order {
		vs := byNode[idx]
		if window > 0 && len(vs) > window {
			vs = vs[len(vs)-window:]
		}
		s := HealthStats{Index: idx, Samples: len(vs), Min: vs[0].Health, Max: vs[0].Health, Since: vs[0].At}
		last := vs[len(vs)-1]
		s.Current, s.Threshold, s.Healthy, s.Last = last.Health, last.Threshold, last.Healthy(), last.At
		for _, v := range vs {
			s.Min, s.Max = min(s.Min, v.Health), max(s.Max, v.Health)
		}
		s.Mean = MeanHealth(vs)
		if len(vs) >= 2 {
			half := len(vs) / 2
			s.Trend = MeanHealth(vs[len(vs)-half:]) - MeanHealth(vs[:half])
		}
		out = append(out, s)
	}
	return out
}

func sortInts(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}
