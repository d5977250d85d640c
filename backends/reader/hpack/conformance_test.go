package hpack_test

import (
	"testing"

	"github.com/distributive-flow/dflow/backends/reader/hpack"
	"github.com/distributive-flow/dflow/testsuite"
)

func TestConformance(t *testing.T) {
	// An empty hpack directory: defaults from GitHub are never cached.
	r := hpack.NewWithOptions(hpack.Options{GHC: testsuite.ReaderGHC, HpackDir: t.TempDir()})
	testsuite.ReaderSuite(t, r, testsuite.HpackFiles)
}
