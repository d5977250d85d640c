// Package testsuite holds what every backend implementation is tested with:
// the conformance suites (StoreSuite, VMSuite) that each implementation runs
// against its real dependency, and hand-written fakes (FakeVM, MemStore) for
// workflow tests, which pass the same suites; and the helpers that the tests
// (and bench) share: the load generator of the zero-downtime tests
// (StartLoad), free ports (FreePort), real dependencies (StartEtcd,
// StartSSHD, Docker) and the example app's repository (HelloRepo).
package testsuite
