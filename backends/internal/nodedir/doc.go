// Package nodedir keeps a node that lives in a directory on this machine
// (the local and vagrant VM backends): its record, node.json, which tells
// which incarnation of the node the directory holds, and the files beside
// it, each written atomically (a temporary file, fsync, rename), so that a
// crash leaves the old content or the new, never a part.
package nodedir
