package deploy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRolloutCount(t *testing.T) {
	tests := []struct{ n, percent, want int }{
		{3, 34, 2}, {3, 33, 1}, {3, 100, 3}, {3, 0, 3}, {10, 25, 3}, {10, 10, 1},
		{100, 25, 25}, {1, 1, 1}, {0, 50, 0}, {4, 50, 2}, {7, 50, 4}, {3, 67, 3}, {3, 66, 2},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, RolloutCount(tt.n, tt.percent), "%d%% of %d", tt.percent, tt.n)
	}
}

func TestRollingOffsets(t *testing.T) {
	assert.Equal(t, []time.Duration{0, 30 * time.Second, 60 * time.Second}, RollingOffsets(3, time.Minute))
	assert.Equal(t, []time.Duration{0}, RollingOffsets(1, time.Minute))
	assert.Equal(t, []time.Duration{0, 0}, RollingOffsets(2, 0))
	assert.Equal(t, []time.Duration{0, 20 * time.Second, 40 * time.Second, 60 * time.Second}, RollingOffsets(4, time.Minute))
}

func TestCheckHealth(t *testing.T) {
	v := func(hs ...float64) []Verdict {
		var out []Verdict
		for _, h := range hs {
			out = append(out, Verdict{Health: h, Threshold: 100})
		}
		return out
	}
	tests := []struct {
		name            string
		baseline, after []Verdict
		tolerance       float64
		failed          bool
		drop            float64
	}{
		{"no change", v(100, 100, 100), v(100), 0, false, 0},
		{"within tolerance", v(100, 100), v(95), 10, false, 5},
		{"beyond tolerance", v(100, 100), v(60), 10, true, 40},
		{"exactly the tolerance passes", v(100), v(90), 10, false, 10},
		{"better than before", v(80, 90), v(100), 0, false, -15},
		{"no baseline (first deploy) never fails", nil, v(0), 5, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := CheckHealth(tt.baseline, tt.after, tt.tolerance)
			assert.Equal(t, tt.failed, h.Failed())
			assert.InDelta(t, tt.drop, h.Drop, 1e-9)
		})
	}
}
