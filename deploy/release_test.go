package deploy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rel(id int, kind, version, outcome string) Release {
	return Release{ID: id, Kind: kind, Version: version, Digest: "d-" + version, Outcome: outcome}
}

func TestRollbackTarget(t *testing.T) {
	a, b, c := "aaaaaaaaaaaa1", "bbbbbbbbbbbb2", "cccccccccccc3"
	history := []Release{
		rel(1, ReleaseDeploy, a, OutcomeSucceeded),
		rel(2, ReleaseDeploy, b, OutcomeSucceeded),
		rel(3, ReleaseDeploy, "ffffffffffff", OutcomeFailed),
		rel(4, ReleaseRestart, b, OutcomeSucceeded),
		rel(5, ReleaseDeploy, c, OutcomeSucceeded),
		rel(6, ReleaseRollback, b, OutcomeSucceeded),
	}
	tests := []struct {
		name    string
		current int
		version string
		want    int
		err     string
	}{
		{name: "from the newest goes to the previous succeeded deploy", current: 5, want: 2},
		{name: "again goes further back, skipping failures and restarts", current: 2, want: 1},
		{name: "the oldest has nothing before it", current: 1, err: "nothing older"},
		{name: "nothing deployed", current: 0, err: "nothing is deployed"},
		{name: "by version prefix", current: 5, version: "aaaaaaa", want: 1},
		{name: "by whole version", current: 1, version: c, want: 5},
		{name: "a failed version is not a target", current: 5, version: "fffffff", err: "no succeeded deploy"},
		{name: "short prefix refused", current: 5, version: "aaa", err: "too short"},
		{name: "the serving version is refused", current: 5, version: c, err: "serves already"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RollbackTarget(State{Releases: history, Current: tt.current}, tt.version)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got.ID)
		})
	}
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
