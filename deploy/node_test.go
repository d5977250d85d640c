package deploy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewNodeID(t *testing.T) {
	a, b := NewNodeID("local", 2), NewNodeID("local", 2)
	require.Regexp(t, `^local-2-[0-9a-f]{8}$`, a)
	require.NotEqual(t, a, b, "each incarnation its own ID")
}
