// Package docker is the VM backend whose nodes are Docker containers: each
// node is a container named dflow-<cluster>-<index> on the user-defined
// bridge network dflow-<cluster> (created on demand, on a /16 subnet that
// clashes with no other Docker network and no address of this host, and
// removed with the cluster's last node), at a fixed address that follows
// from its index (the subnet's .2 is node 0).
// It runs `dflow agent --dir /var/lib/dflow --listen <its address>:<agent
// port>`, reached from the host directly at the container's address (Linux).
//
// Without an image (NodeSpec.Image, dflow.yaml image:, --image), the node
// image is built once, FROM scratch, from files of this machine: the dflow
// executable that runs the backend, the shared libraries it and GHC-built
// executables link (resolved with ldd and ldconfig), /etc/passwd and /tmp;
// it is tagged dflow-node:<content hash> and reused while that hash holds.
// No registry and no base image is needed.
//
// A create that fails after it made the container (its agent never
// answered, the create was cut short by its context) removes it, and the
// network when no node is left on it; the engine call that makes the
// container is not cut short, so that what it made is known. A container
// of another image than asked whose agent is dead or does not answer is
// made anew from the image asked for rather than started again. Remains
// reports every node container, running or not (List: running ones).
//
// With Options.DockerSocket set (the docker container backend), every node
// gets the host's Docker socket bind-mounted, so its agent can run versions
// as sibling containers: such a node can control the host's Docker engine,
// which is root on the host.
package docker
