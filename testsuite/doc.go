// Package testsuite holds what every backend implementation is tested with:
// the conformance suites (StoreSuite, VMSuite) that each implementation runs
// against its real dependency, and hand-written fakes (FakeVM, MemStore) for
// workflow tests, which pass the same suites.
package testsuite
