// Package backends defines the interfaces through which dflow reaches the
// outside world, each method's contract written above it (backends.go):
//
//   - VMBackend makes nodes: Image -> Keys -> Node (vm/local, vm/docker,
//     vm/ssh, vm/vagrant);
//   - ContainerBackend turns a Target into what nodes run and runs and stops
//     its versions on nodes through their agents (container/process, the
//     default: the bundle's executable as a process; container/docker: an
//     image FROM scratch, run as a container);
//   - Builder builds a package into a Target (builder/cabal, builder/stack);
//   - PackageReader reads a package file into a TargetDesc (reader/cabal,
//     reader/hpack);
//   - Store keeps the cluster State with compare-and-swap (store/embedded,
//     store/etcd), and Locker, which the etcd store implements, holds the
//     cluster lock on a lease.
//
// Every implementation lives in its own package below this one, is named
// in dflow.yaml by its Name (worker/backends.go has the table), and passes
// its kind's conformance suite in testsuite/ against its real dependency.
// plugin/ adapts an executable speaking dflow's JSON plugin protocol
// (docs/plugins.md) to any of these kinds, and serves any implementation as
// such an executable.
//
// Backends do not import each other: what several of them share lives in
// backends/internal (loopback: the machine-wide loopback address registry;
// nodedir: a node kept in a directory on this machine, its node.json;
// dockerengine and dockerimage: reaching the Docker engine and building
// images FROM scratch; nodeagent: starting and stopping versions through a
// node's agent; build: what the Haskell builders share; cabalsyntax: the
// Cabal syntax both readers read).
package backends
