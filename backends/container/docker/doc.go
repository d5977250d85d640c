// Package docker is the container backend that runs each version of the app
// as a Docker container: Containerize turns a built Target into an image
// FROM scratch (the Target's executables, the shared libraries they link, a
// minimal /etc/passwd and /tmp), tagged dflow-app/<package>:<digest[:12]>,
// on the Docker engine the nodes use. There is no registry: the worker and
// the nodes share one engine. The node agent starts, gates, switches and
// drains such a version as it does a process (agent/docker.go).
//
// The package also holds what both Docker backends need to build images
// without a base image or a registry: Rootfs (a file tree with the shared
// libraries its executables need, resolved with ldd) and BuildImage (the
// engine's image import API fed a tar streamed from memory). backends/vm/docker
// builds its node image with them.
package docker
