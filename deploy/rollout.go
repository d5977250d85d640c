package deploy

import (
	"fmt"
	"math"
	"time"
)

// RolloutCount is how many of n nodes a rollout of percent% switches:
// ceil(percent% of n), at least 1 when n > 0. percent <= 0 or >= 100 means
// all of them.
func RolloutCount(n, percent int) int {
	if percent <= 0 || percent >= 100 || n == 0 {
		return n
	}
	return max(1, int(math.Ceil(float64(n)*float64(percent)/100-1e-9)))
}

// RollingOffsets spreads batches over a duration: batch i starts at
// offsets[i] after the first one, evenly, the last one at exactly over.
// A single batch starts at once.
func RollingOffsets(batches int, over time.Duration) []time.Duration {
	out := make([]time.Duration, batches)
	if batches < 2 || over <= 0 {
		return out
	}
	for i := range out {
		out[i] = time.Duration(int64(over) * int64(i) / int64(batches-1))
	}
	return out
}

// MeanHealth is the mean health of verdicts (0 for none).
func MeanHealth(vs []Verdict) float64 {
	if len(vs) == 0 {
		return 0
	}
	sum := 0.0
	for _, v := range vs {
		sum += v.Health
	}
	return sum / float64(len(vs))
}

// HealthCheck compares the health of the nodes a batch switched with the
// baseline measured before the rollout.
type HealthCheck struct {
	Baseline  float64 `json:"baseline"`
	After     float64 `json:"after"`
	Drop      float64 `json:"drop"`
	Tolerance float64 `json:"tolerance"`
}

// Failed tells whether health dropped by more than the tolerance.
func (h HealthCheck) Failed() bool { return h.Drop > h.Tolerance }

func (h HealthCheck) String() string {
	return fmt.Sprintf("health %.1f after the switch against a baseline of %.1f: a drop of %.1f, tolerance %.1f", h.After, h.Baseline, h.Drop, h.Tolerance)
}

// CheckHealth compares the new nodes' verdicts with the baseline verdicts.
func CheckHealth(baseline, after []Verdict, tolerance float64) HealthCheck {
	b, a := MeanHealth(baseline), MeanHealth(after)
	return HealthCheck{Baseline: b, After: a, Drop: b - a, Tolerance: tolerance}
}
