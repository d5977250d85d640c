// Package dockerengine is how dflow's Docker backends (the docker VM backend
// and the docker container backend) reach the Docker engine (Connect:
// $DOCKER_HOST or the local socket, at the engine's API version) and label
// what they make in it (ExtraLabels: the pairs of $DFLOW_DOCKER_LABELS,
// which tests set to find and remove their own things).
package dockerengine
