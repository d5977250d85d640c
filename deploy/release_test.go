package deploy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rel(id int, kind, version, outcome string) Release {
	return Release{ID: id, Kind: kind, Version: version, Digest: "d-" + version, Outcome: outcome}
}

// rb is a succeeded rollback, release id, back to release of (version v).
func rb(id int, v string, of int) Release {
	r := rel(id, ReleaseRollback, v, OutcomeSucceeded)
	r.Of = of
	return r
}

func TestRollbackTarget(t *testing.T) {
	a, b, c := "aaaaaaaaaaaa1", "bbbbbbbbbbbb2", "cccccccccccc3"
	ok := OutcomeSucceeded
	history := []Release{
		rel(1, ReleaseDeploy, a, ok),
		rel(2, ReleaseDeploy, b, ok),
		rel(3, ReleaseDeploy, "ffffffffffff", OutcomeFailed),
		rel(4, ReleaseRestart, b, ok),
		rel(5, ReleaseDeploy, c, ok),
	}
	v0, v1, v2, v3 := "000000000000a", "111111111111b", "222222222222c", "333333333333d"
	tests := []struct {
		name    string
		history []Release
		current int
		version string
		want    int
		warning string
		err     string
	}{
		{name: "undoes the current release", history: history, current: 5, want: 2},
		{name: "skips failures and restarts", history: history[:4], current: 2, want: 1},
		{name: "the oldest has nothing before it", history: history[:1], current: 1, err: "nothing further back"},
		{name: "nothing deployed", history: history, current: 0, err: "nothing is deployed"},
		{
			// deploy v1, v2, rollback (to v1), deploy v3, rollback: v1, not
			// v2, which was rolled back from.
			name:    "returns to what served before, not to a version rolled back from",
			history: []Release{rel(1, ReleaseDeploy, v1, ok), rel(2, ReleaseDeploy, v2, ok), rb(3, v1, 1), rel(4, ReleaseDeploy, v3, ok)},
			current: 4, want: 1,
		},
		{
			name:    "again: nothing further back once v1 was the first",
			history: []Release{rel(1, ReleaseDeploy, v1, ok), rel(2, ReleaseDeploy, v2, ok), rb(3, v1, 1), rel(4, ReleaseDeploy, v3, ok), rb(5, v1, 1)},
			current: 1, err: "nothing further back",
		},
		{
			name:    "again walks further back",
			history: []Release{rel(1, ReleaseDeploy, v0, ok), rel(2, ReleaseDeploy, v1, ok), rel(3, ReleaseDeploy, v2, ok), rb(4, v1, 2), rel(5, ReleaseDeploy, v3, ok), rb(6, v1, 2)},
			current: 2, want: 1,
		},
		{
			name:    "an auto-rollout's failed deploy never served",
			history: []Release{rel(1, ReleaseDeploy, v1, ok), rel(2, ReleaseDeploy, v2, ok), rel(3, ReleaseDeploy, v3, OutcomeFailed), rb(4, v2, 2)},
			current: 2, want: 1,
		},
		{
			name:    "after a rollback --version, back to the version it replaced",
			history: []Release{rel(1, ReleaseDeploy, v0, ok), rel(2, ReleaseDeploy, v1, ok), rel(3, ReleaseDeploy, v2, ok), rb(4, v0, 1)},
			current: 1, want: 3,
		},
		{
			name:    "a rollback --version is undone by the next rollback",
			history: []Release{rel(1, ReleaseDeploy, v1, ok), rel(2, ReleaseDeploy, v2, ok), rb(3, v1, 1), rel(4, ReleaseDeploy, v3, ok), rb(5, v1, 1), rb(6, v2, 2)},
			current: 2, want: 1,
		},
		{name: "by version prefix", history: history, current: 5, version: "aaaaaaa", want: 1},
		{name: "by whole version", history: history, current: 1, version: c, want: 5},
		{
			name:    "by the version of one rolled back from: warned",
			history: []Release{rel(1, ReleaseDeploy, v1, ok), rel(2, ReleaseDeploy, v2, ok), rb(3, v1, 1)},
			current: 1, version: v2, want: 2, warning: "was rolled back from",
		},
		{name: "a failed version is not a target", history: history, current: 5, version: "fffffff", err: "no succeeded deploy"},
		{name: "short prefix refused", history: history, current: 5, version: "aaa", err: "too short"},
		{name: "the serving version is refused", history: history, current: 5, version: c, err: "serves already"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warning, err := RollbackTarget(State{Releases: tt.history, Current: tt.current}, tt.version)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got.ID)
			if tt.warning == "" {
				assert.Empty(t, warning)
			} else {
				assert.Contains(t, warning, tt.warning)
			}
		})
	}
}

func TestServingRelease(t *testing.T) {
	s := State{Releases: []Release{rel(1, ReleaseDeploy, "v1", OutcomeSucceeded), rel(2, ReleaseDeploy, "v2", OutcomeSucceeded), rb(3, "v1", 1), rel(4, ReleaseDeploy, "v3", OutcomeFailed)}, Current: 1}
	assert.Equal(t, 3, ServingRelease(s), "the rollback's record, not the deploy it went back to")
	assert.Equal(t, 0, ServingRelease(State{}))
}

func TestAddReleaseKeepsCurrentAndBound(t *testing.T) {
	var s State
	first := s.AddRelease(Release{Kind: ReleaseDeploy, Version: "v1"})
	s.Current = first
	for i := 0; i < MaxReleases+10; i++ {
		s.AddRelease(Release{Kind: ReleaseDeploy, Version: "vx"})
	}
	assert.Len(t, s.Releases, MaxReleases)
	_, ok := s.CurrentRelease()
	assert.True(t, ok, "the current release is never dropped")
	assert.Equal(t, MaxReleases+11, s.Releases[len(s.Releases)-1].ID, "ids keep growing")
}

func TestInstanceIDAndShortVersion(t *testing.T) {
	assert.Equal(t, "r7-0123456789ab", Release{ID: 7, Version: "0123456789abcdef0123"}.InstanceID())
	assert.Equal(t, "0123456789ab-dirty", ShortVersion("0123456789abcdef-dirty"))
	assert.Equal(t, "abc", ShortVersion("abc"))
}
