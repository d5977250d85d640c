package plugin

import (
	"time"

	"github.com/distributive-flow/dflow/backends/plugin"
)

// Kind is the kind an artifact-store plugin lists in its describe answer.
const Kind = "artifacts"

// The verbs of an artifact-store plugin.
const (
	VerbPut    = "artifacts.put"
	VerbGet    = "artifacts.get"
	VerbStat   = "artifacts.stat"
	VerbList   = "artifacts.list"
	VerbDelete = "artifacts.delete"
)

// Error codes of an artifact-store plugin, besides backends/plugin's.
const (
	// CodeNotFound: artifacts.get or artifacts.stat of a digest the store
	// does not hold (artifact.ErrNotFound).
	CodeNotFound = "not_found"
	// CodeDigestMismatch: artifacts.put of a file that does not hash to its
	// digest (artifact.ErrDigestMismatch).
	CodeDigestMismatch = "digest_mismatch"
	// CodeInvalidDigest: a request whose digest is not 64 lowercase hex digits.
	CodeInvalidDigest = "invalid_digest"
)

// DefaultTimeouts bound each call, by verb (plugin.Env.Timeouts overrides
// them); describe's is backends/plugin's.
var DefaultTimeouts = map[string]time.Duration{
	"describe": plugin.DefaultTimeouts["describe"],
	VerbPut:    30 * time.Minute,
	VerbGet:    30 * time.Minute,
	VerbStat:   time.Minute,
	VerbList:   5 * time.Minute,
	VerbDelete: time.Minute,
}

// DigestRequest is the request of artifacts.stat and artifacts.delete.
type DigestRequest struct {
	Digest string `json:"digest"`
}

// PutRequest is the request of artifacts.put: the file at Path holds the
// bundle, Size bytes that hash to Digest (dflow checked it); the plugin
// copies it (dflow removes the file after the call).
type PutRequest struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Path   string `json:"path"`
}

// GetRequest is the request of artifacts.get: the plugin writes the bundle
// to a new file at Path (its directory exists and is dflow's).
type GetRequest struct {
	Digest string `json:"digest"`
	Path   string `json:"path"`
}

// StatResult is the result of artifacts.stat.
type StatResult struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// ModTime is when the bundle was stored, if the plugin knows.
	ModTime time.Time `json:"mod_time,omitzero"`
}

// ListResult is the result of artifacts.list.
type ListResult struct {
	Digests []string `json:"digests"`
}
