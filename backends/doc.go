// Package backends defines the interfaces through which dflow reaches the
// outside world: VMBackend (nodes), Store (cluster state), PackageReader
// (package files), and later ContainerBackend and Builder. Each method's
// contract is written above it; every implementation lives in its own package
// below this one and passes its kind's conformance suite in testsuite/.
package backends
