package cabal_test

import (
	"testing"

	"github.com/distributive-flow/dflow/backends/reader/cabal"
	"github.com/distributive-flow/dflow/testsuite"
)

func TestConformance(t *testing.T) {
	testsuite.ReaderSuite(t, cabal.NewWithOptions(cabal.Options{GHC: testsuite.ReaderGHC}), testsuite.CabalFiles)
}
