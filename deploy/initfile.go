package deploy

import (
	"fmt"
	"path"
	"strings"
)

// InitFile returns a commented dflow.yaml for the package file pkg with
// cluster name name: every key with its default and what it does.
func InitFile(name, pkg string) []byte {
	return InitFileTargets(name, pkg, []string{KindExecutable})
}

// InitFileTargets is InitFile with the target kinds to build and ship
// (KindExecutable, KindLibrary, KindSource). A package.yaml gets the hpack
// package reader, any other package file the cabal one.
func InitFileTargets(name, pkg string, targets []string) []byte {
	reader := "cabal "
	if path.Base(pkg) == "package.yaml" {
		reader = "hpack "
	}
	return []byte(fmt.Sprintf(`# dflow.yaml — how dflow builds and deploys this project.
# Every key is optional; the values below are the defaults. docs/dflow-yaml.md
# documents each one. Flags override this file (e.g. --vm-backend docker).

# Cluster name: names the Temporal workflows and the nodes' owner.
name: %s

# The package file to read (*.cabal or package.yaml), relative to this file.
package: %s

# What to build and ship to the nodes: any of executable, library, source.
target: [%s]

# Image handed to the VM backend (opaque; the local backend ignores it). --image
image: ""

# An authorized_keys file whose keys may also control the nodes (dflow's own
# key, in .dflow/id_ed25519, always can). --keys
keys: ""

backends:
  vm: local              # where nodes come from: local, ssh (nodes.hosts), vagrant. --vm-backend
  container: process     # how a version runs on a node: process. --container-backend
  builder: cabal         # how the target is built: cabal. --builder
  package_reader: %s # how the package file is read: cabal (*.cabal) or hpack (package.yaml). --package-reader
  store: embedded        # where cluster state lives: embedded (.dflow/store.db). --store

nodes:
  agent_port: 7077       # TCP port of the node agent on every node's address
  parallel: 4            # how many nodes set/cycle create or destroy at once (1-64)
  max: 64                # the most nodes set accepts
  max_artifact: 4GiB     # the largest bundle copied to the nodes
  # The ssh backend's inventory: existing hosts, the node index is the position.
  hosts: []              # [user@]host[:port], e.g. [deploy@10.0.0.5, deploy@10.0.0.6:2222]
  inventory: ""          # or a file of such entries, one per line (# comments)
  ssh_key: ""            # private key the ssh backend logs in with; "" = .dflow/id_ed25519
  known_hosts: ""        # host keys are checked against this file; "" = ~/.ssh/known_hosts
  host_key_check: strict # strict (unknown host keys are refused) or accept-new (trust on first use)

app:
  port: 8080             # the public port the agent owns on every node; users connect here
  mode: http             # http (proxy), tcp (forwarder), or restart (stop then start: not zero-downtime)
  health: /health        # readiness probe: GET this path on the new version until it answers 2xx
  executable: ""         # which executable runs; "" = the first one in the package file
  args: []               # its arguments
  env: []                # KEY=VALUE pairs added to its environment (besides PORT, HOST, DFLOW_VERSION, DFLOW_INDEX)
  secrets: []            # names of secret variables: values from secrets_file or the worker's environment, never here
  secrets_file: ""       # KEY=VALUE lines for secrets, mode 0600; "" = .dflow/secrets.env
  ready_probes: 3        # consecutive good probes before the new version gets traffic
  ready_timeout: 30s     # a version not ready by then is killed; the old one keeps serving
  drain_timeout: 30s     # how long the old version may finish its requests in flight
  stop_grace: 10s        # between SIGTERM and SIGKILL

deploy:
  parallel: 1            # how many nodes switch to the new version at once
  stuck_timeout: 15m     # a node step that exhausted its retries pauses the rollout this long for an operator (dflow deploy retry|skip-node|abort)
  stuck_action: abort    # then: abort (undo what switched) or skip-node (leave the node out and go on)

repair:
  max_unavailable: 1     # nodes repair, chaos-monkey and cycle take out of service at once: a number or a percentage (34%%)
  rollback_on_version_fault: false # repair --watch rolls back once when the current release fails verify on most nodes

verify:
  program: ""            # a program printing "health threshold" per node (DFLOW_APP_URL, ...); "" = the built-in probe
  probes: 5              # built-in probe: requests per node (GET app.health; a TCP connect in tcp mode)
  timeout: 1s            # built-in probe: a slower answer counts as failed
  threshold: 100         # built-in probe: the percentage of good probes a healthy node needs

temporal:
  address: ""            # Temporal frontend HOST:PORT; "" runs the embedded control plane. --temporal, $TEMPORAL_ADDRESS
  namespace: default     # Temporal namespace
  task_queue: dflow      # task queue the workers serve
  ui: 127.0.0.1:8233     # where the embedded control plane serves the Web UI, and only it (a taken port falls back to a free one); not loopback: anyone who reaches it can terminate and reset workflows
  frontend: ""           # also serve the embedded frontend on HOST:PORT; no authentication: anyone who reaches it can start, signal, reset, terminate any workflow. "" = 127.0.0.1 only
`, name, pkg, strings.Join(targets, ", "), reader))
}
