package deploy

import (
	"fmt"
	"strings"
	"time"
)

// Release kinds: what put a version on the nodes.
const (
	ReleaseDeploy   = "deploy"   // a new build
	ReleaseRollback = "rollback" // back to an earlier release
	ReleaseRestart  = "restart"  // the same version again, through the switch
	ReleaseStart    = "start"    // the current release started where it did not run
)

// Release outcomes.
const (
	OutcomeRunning   = "running"
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
)

// MaxReleases bounds the release history kept in the Store (oldest go first).
const MaxReleases = 200

// Release is the record of one rollout: what it shipped, who asked, when,
// and how it ended.
type Release struct {
	ID       int       `json:"id"`
	Kind     string    `json:"kind"`
	Version  string    `json:"version"`
	Digest   string    `json:"digest"`
	Target   Target    `json:"target"`
	Config   Config    `json:"config"` // the configuration it ran with
	Who      string    `json:"who"`
	Workflow string    `json:"workflow"` // workflow ID/run ID, for the Web UI
	At       time.Time `json:"at"`
	Finished time.Time `json:"finished,omitzero"`
	Outcome  string    `json:"outcome"`
	Error    string    `json:"error,omitempty"`
	// Of is, for a rollback, the release it went back to.
	Of int `json:"of,omitempty"`
	// Nodes are the indices that switched to this release.
	Nodes []int `json:"nodes,omitempty"`
	// Warnings are what the agents noticed about its instances, e.g. one
	// that listens beyond loopback.
	Warnings []string `json:"warnings,omitempty"`
	// LeftOut are the nodes left out of the rollout: a step of theirs was
	// stuck and an operator (or deploy.stuck_action) decided skip-node.
	LeftOut []int `json:"left_out,omitempty"`
}

// InstanceID names the process a release starts on a node: unique per
// release, stable across retries (the agent's start is idempotent on it).
func (r Release) InstanceID() string {
	return fmt.Sprintf("r%d-%s", r.ID, ShortVersion(r.Version))
}

// Release returns the release with id.
func (s State) Release(id int) (Release, bool) {
	for _, r := range s.Releases {
		if r.ID == id {
			return r, true
		}
	}
	return Release{}, false
}

// AddRelease appends r with the next ID and returns that ID, dropping the
// oldest releases beyond MaxReleases (never the current one).
func (s *State) AddRelease(r Release) int {
	next := 1
	if n := len(s.Releases); n > 0 {
		next = s.Releases[n-1].ID + 1
	}
	r.ID = next
	s.Releases = append(s.Releases, r)
	for len(s.Releases) > MaxReleases {
		drop := 0
		if s.Releases[0].ID == s.Current && len(s.Releases) > 1 {
			drop = 1
		}
		s.Releases = append(s.Releases[:drop:drop], s.Releases[drop+1:]...)
	}
	return next
}

// CurrentRelease is the release the cluster serves, if any.
func (s State) CurrentRelease() (Release, bool) {
	if s.Current == 0 {
		return Release{}, false
	}
	return s.Release(s.Current)
}

// Served is what served, oldest first, as rollback walks it back: each
// succeeded deploy pushes its release (replacing the top when it ships the
// same version). A succeeded rollback to the release below the top undoes
// the top: it pops it (its version is then one rolled back from). A
// rollback to any other release (rollback --version) pushes that release,
// as a deploy of it would, so that the next rollback undoes it; one to the
// top itself (an auto-rollout going back from a deploy that failed, so
// never served) changes nothing. Restarts and starts change nothing. The
// top is the current release.
func Served(s State) (stack []Release, rolledFrom map[string]bool) {
	rolledFrom = map[string]bool{}
	deploys := map[int]Release{}
	push := func(r Release) {
		if n := len(stack); n > 0 && stack[n-1].Version == r.Version {
			stack[n-1] = r
			return
		}
		stack = append(stack, r)
	}
	for _, r := range s.Releases {
		if r.Kind == ReleaseDeploy {
			deploys[r.ID] = r
		}
		if r.Outcome != OutcomeSucceeded {
			continue
		}
		switch r.Kind {
		case ReleaseDeploy:
			push(r)
		case ReleaseRollback:
			to, ok := deploys[r.Of]
			if !ok {
				continue // its target left the history (MaxReleases)
			}
			if n := len(stack); n >= 2 && stack[n-2].Version == to.Version {
				rolledFrom[stack[n-1].Version] = true
				stack = stack[:n-1]
			}
			push(to)
		}
	}
	return stack, rolledFrom
}

// ServingRelease is the ID of the release that put the serving version on
// the nodes: the newest succeeded release of the current release's version
// (a rollback's own record, not the deploy it went back to); 0 when nothing
// is deployed.
func ServingRelease(s State) int {
	cur, ok := s.CurrentRelease()
	if !ok {
		return 0
	}
	for i := len(s.Releases) - 1; i >= 0; i-- {
		if r := s.Releases[i]; r.Outcome == OutcomeSucceeded && r.Version == cur.Version {
			return r.ID
		}
	}
	return cur.ID
}

// RollbackTarget picks the release `rollback` goes back to. With version ""
// it undoes the current release: it goes back to what served before it
// (Served), so calling rollback again walks further back and never returns
// to a version that was rolled back from. With a version (a prefix of at
// least 7 characters, or the whole version) it is the newest succeeded
// deploy of that version; warning says when that version was once rolled
// back from.
func RollbackTarget(s State, version string) (target Release, warning string, err error) {
	cur, ok := s.CurrentRelease()
	stack, rolledFrom := Served(s)
	if version != "" {
		if len(version) < 7 && !strings.HasSuffix(version, "-dirty") {
			return Release{}, "", fmt.Errorf("version %q is too short: give at least 7 characters of the commit hash", version)
		}
		var found []Release
		for i := len(s.Releases) - 1; i >= 0; i-- {
			r := s.Releases[i]
			if r.Kind == ReleaseDeploy && r.Outcome == OutcomeSucceeded && strings.HasPrefix(r.Version, version) {
				found = append(found, r)
			}
		}
		if len(found) == 0 {
			return Release{}, "", fmt.Errorf("no succeeded deploy of version %s in the release history (`dflow releases` lists them)", version)
		}
		for _, r := range found[1:] {
			if r.Version != found[0].Version {
				return Release{}, "", fmt.Errorf("version %s is ambiguous: %s and %s", version, ShortVersion(found[0].Version), ShortVersion(r.Version))
			}
		}
		if ok && found[0].Version == cur.Version {
			return Release{}, "", fmt.Errorf("version %s is what the cluster serves already", ShortVersion(found[0].Version))
		}
		if rolledFrom[found[0].Version] {
			warning = fmt.Sprintf("version %s was rolled back from before; going back to it as asked", ShortVersion(found[0].Version))
		}
		return found[0], warning, nil
	}
	if !ok {
		return Release{}, "", fmt.Errorf("nothing is deployed yet: there is nothing to roll back")
	}
	if n := len(stack); n >= 2 {
		return stack[n-2], "", nil
	}
	return Release{}, "", fmt.Errorf("release %d (%s) is the oldest that served among the releases kept: there is nothing further back to roll back to", cur.ID, ShortVersion(cur.Version))
}
