// Package vagrant is the VM backend that makes each node a Vagrant machine:
// it writes a Vagrantfile per node into .dflow/vagrant/<index>/ and drives
// the vagrant CLI (`vagrant up --provider=...`, `vagrant status
// --machine-readable`, `vagrant destroy -f`). Image is the box, or with the
// docker provider (the default) a docker image.
//
// Every node is reached at a loopback address of its own on this machine
// (127.0.0.x, claimed in the same machine-wide registry as the local
// backend's), to which the agent port and the app port are forwarded, so an
// index keeps its address whatever the machine's own address is.
//
// The agent runs inside the machine. With the docker provider it is the
// container's command (the dflow executable and the node's authorized_keys
// are mounted read-only, the agent's directory is .dflow/vagrant/<index>/state),
// so `vagrant up` starts it and a dead agent is a stopped machine. With a VM
// provider (virtualbox, libvirt) a file provisioner uploads dflow and an
// always-run shell provisioner starts the agent detached; `vagrant provision`
// starts it again.
//
// A create that fails removes what it made: `vagrant destroy -f`, the node's
// directory, the address it claimed then, and with the docker provider a
// container labelled dflow.vagrant-dir=<node directory> that vagrant lost
// track of (an up cut short before vagrant recorded it). A machine of another
// image than asked whose agent does not answer is made anew. Remains reports
// every node directory, whether or not its agent answers.
package vagrant
