package process_test

import (
	"os"
	"testing"

	"github.com/distributive-flow/dflow/agent/process/fakeapp"
	"github.com/distributive-flow/dflow/backends/container/process"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// TestMain doubles as the app: the suite's bundle holds this test binary,
// which serves as the fake app when started with DFLOW_FAKE_APP=1.
func TestMain(m *testing.M) {
	fakeapp.ServeIfAsked()
	os.Exit(m.Run())
}

func TestConformance(t *testing.T) {
	testsuite.ContainerSuite(t, func(t *testing.T) testsuite.ContainerHarness {
		n := testsuite.NewContainerNode(t)
		b, err := process.New(process.Options{Signer: n.Signer})
		require.NoError(t, err)
		return testsuite.ContainerHarness{Backend: b, ContainerNode: n}
	})
}

func TestNewNeedsASigner(t *testing.T) {
	_, err := process.New(process.Options{})
	require.ErrorContains(t, err, "Signer is required")
}
