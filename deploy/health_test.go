package deploy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStats(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var vs []Verdict
	for i, h := range []float64{100, 100, 80, 60} {
		vs = append(vs, Verdict{Index: 1, Health: h, Threshold: 90, At: at.Add(time.Duration(i) * time.Minute)})
	}
	vs = append(vs, Verdict{Index: 0, Health: 100, Threshold: 100, At: at})
	tests := []struct {
		name   string
		window int
		want   HealthStats
	}{
		{"all of node 1", 0, HealthStats{Index: 1, Samples: 4, Current: 60, Min: 60, Mean: 85, Max: 100, Threshold: 90, Healthy: false, Trend: -30, Since: at, Last: at.Add(3 * time.Minute)}},
		{"a window of 2", 2, HealthStats{Index: 1, Samples: 2, Current: 60, Min: 60, Mean: 70, Max: 80, Threshold: 90, Healthy: false, Trend: -20, Since: at.Add(2 * time.Minute), Last: at.Add(3 * time.Minute)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Stats(vs, tt.window)
			require.Len(t, s, 2)
			assert.Equal(t, 0, s[0].Index, "sorted by index")
			assert.True(t, s[0].Healthy)
			assert.Equal(t, tt.want, s[1])
		})
	}
}

func TestAddVerdictKeepsTheNewestPerNode(t *testing.T) {
	var s State
	for i := 0; i < MaxVerdicts+5; i++ {
		s.AddVerdict(Verdict{Index: 0, Health: float64(i)})
		s.AddVerdict(Verdict{Index: 1, Health: float64(i)})
	}
	assert.Len(t, s.Health, 2*MaxVerdicts)
	assert.Equal(t, float64(5), s.Health[0].Health, "the oldest went first")
}
