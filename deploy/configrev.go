package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// ConfigRevision is one configuration as the Store keeps it: the whole
// Config, and app.env's values beside it (Config's JSON never carries them).
// Workflows carry only Config.Revision; the worker reads Env from here when
// it starts a version. Secrets (app.secrets) are names only: their values
// are in no revision.
type ConfigRevision struct {
	Rev    int64     `json:"rev"`
	Hash   string    `json:"hash"` // sha256 of Config (Revision 0) and Env
	Config Config    `json:"config"`
	Env    []string  `json:"env,omitempty"`
	At     time.Time `json:"at"`
}

// MaxConfigs bounds the revisions kept that no kept release refers to.
const MaxConfigs = 50

// configHash identifies c's content: the same configuration gets the same
// revision again.
func configHash(c Config) string {
	c.Revision = 0
	b, _ := json.Marshal(struct {
		C   Config
		Env []string
	}{c, c.App.Env})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// PutConfig records c as a revision (the newest one with the same content
// is reused) and returns its number. It keeps every revision a kept release
// refers to, and at most MaxConfigs others.
func (s *State) PutConfig(c Config, now time.Time) int64 {
	h := configHash(c)
	if n := len(s.Configs); n > 0 && s.Configs[n-1].Hash == h {
		return s.Configs[n-1].Rev
	}
	var rev int64 = 1
	if n := len(s.Configs); n > 0 {
		rev = s.Configs[n-1].Rev + 1
	}
	c.Revision = rev
	s.Configs = append(s.Configs, ConfigRevision{Rev: rev, Hash: h, Config: c, Env: slices.Clone(c.App.Env), At: now.UTC()})
	s.pruneConfigs()
	return rev
}

func (s *State) pruneConfigs() {
	used := map[int64]bool{}
	for _, r := range s.Releases {
		used[r.Config.Revision] = true
	}
	extra := 0
	for _, c := range s.Configs {
		if !used[c.Rev] {
			extra++
		}
	}
	kept := s.Configs[:0]
	for i, c := range s.Configs {
		if extra > MaxConfigs && !used[c.Rev] && i < len(s.Configs)-1 {
			extra--
			continue
		}
		kept = append(kept, c)
	}
	s.Configs = kept
}

// Config returns configuration revision rev, with its app.env restored.
func (s State) Config(rev int64) (Config, error) {
	for _, c := range s.Configs {
		if c.Rev == rev {
			out := c.Config
			out.App.Env = slices.Clone(c.Env)
			out.Revision = rev
			return out, nil
		}
	}
	return Config{}, fmt.Errorf("configuration revision %d is not in the store (it keeps every release's and the newest %d others)", rev, MaxConfigs)
}

// ConfigRef is what an activity gets instead of a configuration: which
// revision, and where the Store that holds it is. The worker reads the
// revision (app.env's values included) from the Store and builds the
// backends it names once.
type ConfigRef struct {
	Dir      string `json:"dir"`   // the project root (the embedded store and keys are under it)
	Name     string `json:"name"`  // the cluster
	Store    string `json:"store"` // backends.store
	Revision int64  `json:"revision"`
}

// Ref is the reference to c's revision.
func (c Config) Ref() ConfigRef {
	return ConfigRef{Dir: c.Dir, Name: c.Name, Store: c.Backends.Store, Revision: c.Revision}
}

// StoreConfig is the configuration that opens the Store r names (defaults
// for everything else).
func (r ConfigRef) StoreConfig() Config {
	c := Default(r.Dir)
	c.Name, c.Backends.Store = r.Name, r.Store
	return c
}
