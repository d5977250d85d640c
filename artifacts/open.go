package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/artifacts/local"
	"github.com/distributive-flow/dflow/artifacts/oci"
	"github.com/distributive-flow/dflow/artifacts/plugin"
)

// The kinds of store a spec names.
const (
	KindLocal  = "local"
	KindOCI    = "oci"
	KindPlugin = "plugin"
)

// Spec is a parsed store value (see Parse).
type Spec struct {
	Kind string // KindLocal, KindOCI or KindPlugin
	// Dir is a local store's directory, absolute ("" for `local`: the
	// default directory, Options.LocalDir).
	Dir string
	// Host ("HOST[:PORT]") and Repo ("team/dflow") of an OCI store;
	// PlainHTTP for oci+http://.
	Host, Repo string
	PlainHTTP  bool
	// Path is a plugin's executable, absolute.
	Path string
}

// String is the spec in the form Parse reads.
func (s Spec) String() string {
	switch s.Kind {
	case KindOCI:
		scheme := "oci"
		if s.PlainHTTP {
			scheme = "oci+http"
		}
		return scheme + "://" + s.Host + "/" + s.Repo
	case KindPlugin:
		return s.Path
	}
	if s.Dir == "" {
		return "local"
	}
	return s.Dir
}

// Parse reads the value of `artifacts.store` / `--artifact-store`:
//
//   - "" or "local": the local store in the default directory;
//   - oci://HOST[:PORT]/REPO: an OCI registry over HTTPS; oci+http://...:
//     the same over plain HTTP. REPO may have several components
//     (team/dflow); no user, password, tag, query or fragment;
//   - a value with a "/" (./x, /x, ../x, dir/x), resolved against base when
//     relative: the exec plugin at that path when it is an executable
//     file, else a local store in that directory (created on first use when
//     it does not exist yet);
//   - anything else (another scheme, a bare name) is an error naming the
//     value and the forms it may take.
//
// It looks at the file system to tell a plugin from a directory, and makes
// no other check (Open does).
func Parse(value, base string) (Spec, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("artifact store %q: %s (want local, a directory, oci://HOST[:PORT]/REPO, oci+http://HOST[:PORT]/REPO, or the path of an executable plugin)", value, fmt.Sprintf(format, args...))
	}
	v := strings.TrimSpace(value)
	if v == "" || v == "local" {
		return Spec{Kind: KindLocal}, nil
	}
	if scheme, rest, ok := strings.Cut(v, "://"); ok && !strings.Contains(scheme, "/") {
		switch scheme {
		case "oci", "oci+http":
		case "oci+https":
			return Spec{}, bad("write oci:// for HTTPS")
		default:
			return Spec{}, bad("unknown scheme %q", scheme)
		}
		u, err := url.Parse("x://" + rest)
		switch {
		case err != nil:
			return Spec{}, bad("%v", err)
		case u.User != nil:
			return Spec{}, bad("credentials do not go in the URL: log in with `docker login` or `oras login` (docs/artifacts.md)")
		case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(rest, "?") || strings.HasSuffix(rest, "#"):
			return Spec{}, bad("no query or fragment")
		case u.Host == "":
			return Spec{}, bad("no registry host")
		}
		repo := strings.Trim(u.Path, "/")
		if repo == "" {
			return Spec{}, bad("no repository: write %s://%s/REPO", scheme, u.Host)
		}
		if strings.ContainsAny(repo, ":@") {
			return Spec{}, bad("name a repository, without a tag or digest")
		}
		return Spec{Kind: KindOCI, Host: u.Host, Repo: repo, PlainHTTP: scheme == "oci+http"}, nil
	}
	if !strings.ContainsRune(v, '/') && !strings.ContainsRune(v, filepath.Separator) {
		return Spec{}, bad("not a store name; for a directory of that name write ./%s", v)
	}
	path := v
	if !filepath.IsAbs(path) && base != "" {
		path = filepath.Join(base, path)
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return Spec{}, bad("%v", err)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Spec{Kind: KindLocal, Dir: path}, nil
	case err != nil:
		return Spec{}, bad("%v", err)
	case fi.IsDir():
		return Spec{Kind: KindLocal, Dir: path}, nil
	case fi.Mode().IsRegular() && fi.Mode()&0o111 != 0:
		return Spec{Kind: KindPlugin, Path: path}, nil
	case fi.Mode().IsRegular():
		return Spec{}, bad("%s is a file that is not executable: neither a plugin (chmod +x %s) nor a directory", path, path)
	}
	return Spec{}, bad("%s is neither a directory nor an executable file", path)
}

// Options are what Open needs besides the spec. Zero values are fine except
// LocalDir, which `local` needs.
type Options struct {
	// Base resolves relative paths (the directory of dflow.yaml); "": the
	// current directory.
	Base string
	// LocalDir is the directory of `local` (the project's .dflow/artifacts).
	LocalDir string
	// Local bounds a local store (artifact's defaults when zero).
	Local artifact.StoreOptions
	// OCI configures an OCI store (PlainHTTP comes from the spec's scheme).
	OCI oci.Options
	// Plugin configures an exec plugin; its Env.Project defaults to Base.
	Plugin plugin.Options
}

// Open makes the store that spec names (see Parse). An OCI store makes no
// request here (a wrong host or missing credentials show at first use);
// a plugin is run once (describe).
func Open(ctx context.Context, spec string, o Options) (Store, error) {
	s, err := Parse(spec, o.Base)
	if err != nil {
		return nil, err
	}
	return OpenSpec(ctx, s, o)
}

// OpenSpec is Open of a parsed spec.
func OpenSpec(ctx context.Context, s Spec, o Options) (Store, error) {
	switch s.Kind {
	case KindLocal:
		dir := s.Dir
		if dir == "" {
			dir = o.LocalDir
		}
		if dir == "" {
			return nil, errors.New(`artifact store "local": no directory for it (Options.LocalDir)`)
		}
		return local.Open(dir, o.Local)
	case KindOCI:
		oo := o.OCI
		oo.PlainHTTP = s.PlainHTTP
		return oci.New(s.Host, s.Repo, oo)
	case KindPlugin:
		po := o.Plugin
		if po.Env.Project == "" {
			po.Env.Project = o.Base
		}
		return plugin.Open(ctx, s.Path, po)
	}
	return nil, fmt.Errorf("artifact store %q: unknown kind %q", s, s.Kind)
}

var (
	_ Store = (*local.Store)(nil)
	_ Store = (*oci.Store)(nil)
	_ Store = (*plugin.Store)(nil)
)
