package cabalsyntax

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestInVersionRange(t *testing.T) {
	tests := []struct {
		v, r string
		want bool
	}{
		{"9.0.2", "", true},
		{"9.0.2", "-any", true},
		{"9.0.2", "-none", false},
		{"9.8.2", ">= 9.8", true},
		{"9.6.7", ">= 9.8", false},
		{"9.10.1", "==9.10.*", true},
		{"9.10", "==9.10.*", true},
		{"9.11", "==9.10.*", false},
		{"9.1", "==9.10.*", false},
		{"9.10.1", ">9.11", false},
		{"9.12.1", "> 9.11", true},
		{"9.10", "< 9.10", false},
		{"9.8.4", "<9.10", true},
		{"9.2.8", "<9.3", true},
		{"9.6.7", "^>=9.6", true},
		{"9.6.7", "^>= 9.6.8", false},
		{"9.7", "^>=9.6", false},
		{"1.1.0", "^>=1", false}, // ^>=1 is >=1 && <1.1
		{"1.0.5", "^>=1.0", true},
		{"9.4.8", "== { 9.4.8, 9.6.7 }", true},
		{"9.4.7", "=={9.4.8,9.6.7}", false},
		{"9.6.7", ">= 9.6 && < 9.10", true},
		{"9.10.1", ">= 9.6 && < 9.10", false},
		{"8.10.7", "(>= 9.6 && < 9.10) || < 9", true},
		{"9.0", "== 9.0.0", false}, // cabal: 9.0 and 9.0.0 differ
		{"9.0.0", "<= 9.0", false},
	}
	for _, tt := range tests {
		t.Run(tt.v+" in "+tt.r, func(t *testing.T) {
			got, err := InVersionRange(tt.v, tt.r)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	for _, bad := range []string{">=", "9.2", ">= 9.x", ">=1.*", "(>= 1", "== { 1, 2", ">= 1 &&", ">= 1 extra"} {
		_, err := InVersionRange("9.0.2", bad)
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), "version range")
	}
}

func TestImpl(t *testing.T) {
	pl := Platform{OS: "linux", Arch: "x86_64", GHC: "9.0.2"}
	tests := []struct {
		cond string
		want bool
	}{
		{"impl(ghc)", true},
		{"impl(GHC >= 8.10)", true},
		{"impl(ghc >= 9.8)", false},
		{"!impl(ghc ==9.10.*) && !impl(ghc >= 9.14)", true},
		{"flag(f) && (impl(ghc >= 9.6) && impl(ghc < 9.10))", false},
		{"impl(ghcjs)", false},
		{"impl(ghcjs >= 0.1) || os(linux)", true},
	}
	for _, tt := range tests {
		got, err := EvalCondition(tt.cond, map[string]bool{"f": true}, pl)
		require.NoError(t, err, tt.cond)
		require.Equal(t, tt.want, got, tt.cond)
	}
	_, err := EvalCondition("impl(ghc >= nine)", nil, pl)
	require.ErrorContains(t, err, "impl(ghc >= nine)")
}

func TestIsComponentName(t *testing.T) {
	for s, want := range map[string]bool{
		"hello": true, ".cachix-deployment": true, "a_b": true, "test-3": true, "x'": true,
		"": false, ".": false, "..": false, "a/b": false, "a b": false, "a:b": false,
	} {
		require.Equal(t, want, IsComponentName(s), s)
	}
}
