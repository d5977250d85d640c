// Package nodeagent runs and stops versions of a Target through a node's
// agent (agent/api's signed client): the Start and Stop that the process
// and docker container backends share. The two differ only in what the
// agent is asked to run: the bundle's executable as a process, or a
// container of an image (backends.Container.Image).
package nodeagent
