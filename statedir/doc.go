// Package statedir keeps a project's state directory (.dflow/) private to its
// owner: the directory is mode 0700 and the files in it that hold state, keys
// or secrets (the control plane's and the store's databases, the signing key,
// the server's record and log, secret files) are 0600. An install made by an
// older dflow is tightened the first time dflow opens it: Ensure fixes the
// directory, Tighten the files each owner knows.
//
// Only group and other bits are ever taken away; the owner's own bits are
// left as they are, so a file the operator made read-only stays read-only.
package statedir
