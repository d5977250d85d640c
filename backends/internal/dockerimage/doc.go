// Package dockerimage builds Docker images without a base image or a
// registry: a Rootfs is a file tree made from files of this machine (with
// the shared libraries its executables link, resolved with ldd, and a
// minimal /etc/passwd and /tmp), and BuildImage imports it FROM scratch as
// one layer through the engine's image import API, fed a tar streamed from
// memory; EnsureImage builds a tag only when it is missing. The docker VM
// backend builds its node image with it, the docker container backend its
// app images.
package dockerimage
