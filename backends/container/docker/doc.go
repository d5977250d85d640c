// Package docker is the container backend that runs each version of the app
// as a Docker container: Containerize turns a built Target into an image
// FROM scratch (the Target's executables, the shared libraries they link, a
// minimal /etc/passwd and /tmp), tagged dflow-app/<package>:<digest[:12]>,
// on the Docker engine the nodes use. There is no registry: the worker and
// the nodes share one engine. Start and Stop ask the node's agent (through
// its signed client) to run and stop a container of that image; the agent
// gates, switches and drains it as it does a process (agent/docker.go).
//
// Images are built with backends/internal/dockerimage, which the docker VM
// backend shares; export.go passes its Rootfs and BuildImage on to the
// tests outside backends/ that build images of their own.
package docker
