package testsuite_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
)

// The fakes obey the same contracts as the real backends.
func TestFakeVMConforms(t *testing.T) {
	testsuite.VMSuite(t, func(t *testing.T) testsuite.VMHarness {
		vm := testsuite.NewFakeVM()
		return testsuite.VMHarness{
			Backend: vm, Kill: func(t *testing.T, n deploy.Node) { vm.Kill(n.Index) },
			Remains: func(t *testing.T, index int) []string {
				held, _ := vm.Remains(context.Background())
				if slices.Contains(held, index) {
					return []string{fmt.Sprintf("fake node %d", index)}
				}
				return nil
			},
			Images: [2]string{"image-a", "image-b"},
		}
	})
}

func TestMemStoreConforms(t *testing.T) {
	testsuite.StoreSuite(t,
		func(t *testing.T) backends.Store { return testsuite.NewMemStore() },
		func(t *testing.T, s backends.Store) backends.Store { return s })
}
