// Package process is the default container backend: a version runs on its
// node as a plain process of the Target's bundle, under the node's agent
// (which unpacks the bundle, runs its executable with PORT and HOST,
// gates, switches and drains it). Containerize makes nothing: the bundle
// is what nodes run from; it checks that the Target has an executable.
// Start and Stop talk to the node's agent through its signed client.
package process
