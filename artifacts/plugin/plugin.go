package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/artifacts/internal/verify"
	"github.com/distributive-flow/dflow/backends/plugin"
)

// Store is an artifacts.Store served by an executable plugin.
type Store struct {
	path    string
	env     plugin.Env
	desc    plugin.Description
	tempDir string
}

// Options configure a Store.
type Options struct {
	// Env is what the plugin is given besides its requests (project,
	// state directory, variables, timeouts by verb, answer cap), as for a
	// backend plugin.
	Env plugin.Env
	// TempDir holds the files that carry bundles to and from the plugin;
	// "": os.TempDir(). The plugin must be able to read and write there.
	TempDir string
}

// Open checks the executable at path (relative paths are resolved against
// o.Env.Project) and asks it to describe itself; it refuses (wrapping
// plugin.ErrRefused) a plugin that is missing, not executable, speaks
// another protocol or does not list the kind "artifacts".
func Open(ctx context.Context, path string, o Options) (*Store, error) {
	abs := path
	if !filepath.IsAbs(abs) && o.Env.Project != "" {
		abs = filepath.Join(o.Env.Project, abs)
	}
	abs, err := filepath.Abs(abs)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("plugin %s: %w: no such file", abs, plugin.ErrRefused)
	case err != nil:
		return nil, fmt.Errorf("plugin %s: %w: %w", abs, plugin.ErrRefused, err)
	case fi.IsDir():
		return nil, fmt.Errorf("plugin %s: %w: is a directory, not an executable", abs, plugin.ErrRefused)
	case fi.Mode()&0o111 == 0:
		return nil, fmt.Errorf("plugin %s: %w: not executable (chmod +x %s)", abs, plugin.ErrRefused, abs)
	}
	env := o.Env
	if env.Exe == "" {
		env.Exe, _ = os.Executable()
	}
	if env.StateDir == "" && env.Project != "" {
		env.StateDir = filepath.Join(env.Project, ".dflow")
	}
	if env.MaxAnswer <= 0 {
		env.MaxAnswer = plugin.DefaultMaxAnswer
	}
	s := &Store{path: abs, env: env, tempDir: o.TempDir}
	if err := s.call(ctx, "describe", struct{}{}, &s.desc); err != nil {
		return nil, err
	}
	switch {
	case s.desc.Protocol != plugin.Protocol:
		return nil, fmt.Errorf("plugin %s: %w: speaks protocol %d; this dflow speaks %d", abs, plugin.ErrRefused, s.desc.Protocol, plugin.Protocol)
	case !slices.Contains(s.desc.Kinds, Kind):
		return nil, fmt.Errorf("plugin %s: %w: does not offer an %s store (it offers: %s)", abs, plugin.ErrRefused, Kind, strings.Join(s.desc.Kinds, ", "))
	}
	if s.desc.Name == "" {
		s.desc.Name = filepath.Base(abs)
	}
	return s, nil
}

// Path is the plugin's absolute path.
func (s *Store) Path() string { return s.path }

// Description is what the plugin said about itself.
func (s *Store) Description() plugin.Description { return s.desc }

func (s *Store) String() string { return s.path }

// Put copies r to a temp file, checking the digest and size on the way (so
// the plugin never sees content that does not match), and hands the file to
// artifacts.put. A digest artifacts.stat finds already: r is not read.
func (s *Store) Put(ctx context.Context, digest string, r io.Reader, size int64) error {
	if err := verify.Digest(digest); err != nil {
		return fmt.Errorf("plugin put: %w", err)
	}
	if size < -1 {
		return fmt.Errorf("plugin put sha256:%s: negative size %d", digest, size)
	}
	if _, err := s.Stat(ctx, digest); err == nil {
		return nil
	} else if !errors.Is(err, artifact.ErrNotFound) {
		return fmt.Errorf("plugin put sha256:%s: %w", digest, err)
	}
	f, err := os.CreateTemp(s.tempDir, "dflow-plugin-put-*")
	if err != nil {
		return fmt.Errorf("plugin put sha256:%s: %w", digest, err)
	}
	defer os.Remove(f.Name())
	n, err := io.Copy(f, verify.Reader(verify.Context(ctx, r), digest, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("plugin put sha256:%s: %w", digest, err)
	}
	if err := s.call(ctx, VerbPut, PutRequest{Digest: digest, Size: n, Path: f.Name()}, nil); err != nil {
		return fmt.Errorf("plugin put sha256:%s: %w", digest, err)
	}
	return nil
}

// Get has artifacts.get write the bundle to a file in a new temp directory,
// opens it and removes it at once (the open file keeps the bytes until
// Close); the reader checks the digest as it is read.
func (s *Store) Get(ctx context.Context, digest string) (io.ReadCloser, error) {
	if err := verify.Digest(digest); err != nil {
		return nil, fmt.Errorf("plugin get: %w", err)
	}
	dir, err := os.MkdirTemp(s.tempDir, "dflow-plugin-get-*")
	if err != nil {
		return nil, fmt.Errorf("plugin get sha256:%s: %w", digest, err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, digest)
	if err := s.call(ctx, VerbGet, GetRequest{Digest: digest, Path: path}, nil); err != nil {
		return nil, fmt.Errorf("plugin get sha256:%s: %w", digest, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("plugin get sha256:%s: plugin %s: %s: %w: answered but left no file: %w", digest, s.path, VerbGet, plugin.ErrBadAnswer, err)
	}
	return verify.ReadCloser(f, digest, -1), nil
}

// Stat asks artifacts.stat.
func (s *Store) Stat(ctx context.Context, digest string) (artifact.Blob, error) {
	if err := verify.Digest(digest); err != nil {
		return artifact.Blob{}, fmt.Errorf("plugin stat: %w", err)
	}
	var r StatResult
	if err := s.call(ctx, VerbStat, DigestRequest{Digest: digest}, &r); err != nil {
		return artifact.Blob{}, fmt.Errorf("plugin stat sha256:%s: %w", digest, err)
	}
	if r.Digest != digest || r.Size < 0 {
		return artifact.Blob{}, fmt.Errorf("plugin stat sha256:%s: plugin %s: %s: %w: answered digest %q, size %d", digest, s.path, VerbStat, plugin.ErrBadAnswer, r.Digest, r.Size)
	}
	return artifact.Blob{Digest: digest, Size: r.Size, ModTime: r.ModTime}, nil
}

// List asks artifacts.list and sorts its answer (refusing one that holds
// something that is not a digest).
func (s *Store) List(ctx context.Context) ([]string, error) {
	var r ListResult
	if err := s.call(ctx, VerbList, struct{}{}, &r); err != nil {
		return nil, fmt.Errorf("plugin list: %w", err)
	}
	out := make([]string, 0, len(r.Digests))
	for _, d := range r.Digests {
		if err := verify.Digest(d); err != nil {
			return nil, fmt.Errorf("plugin list: plugin %s: %s: %w: %w", s.path, VerbList, plugin.ErrBadAnswer, err)
		}
		out = append(out, d)
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// Delete asks artifacts.delete; a plugin that answers not_found for a
// missing digest is taken to have nothing to delete.
func (s *Store) Delete(ctx context.Context, digest string) error {
	if err := verify.Digest(digest); err != nil {
		return fmt.Errorf("plugin delete: %w", err)
	}
	err := s.call(ctx, VerbDelete, DigestRequest{Digest: digest}, nil)
	if err != nil && !errors.Is(err, artifact.ErrNotFound) {
		return fmt.Errorf("plugin delete sha256:%s: %w", digest, err)
	}
	return nil
}
