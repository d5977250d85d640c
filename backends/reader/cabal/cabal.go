package cabal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/internal/cabalsyntax"
	"github.com/distributive-flow/dflow/deploy"
)

// Name is the name that selects this reader in dflow.yaml.
const Name = "cabal"

// ParseError is a .cabal file that cannot be read: what is wrong, and where.
type ParseError struct {
	File string
	Line int // 1-based
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Options configure the reader.
type Options struct {
	// GHC is the version of the GHC that builds the package (such as
	// 9.6.7): impl(ghc RANGE) conditions are true when it is in RANGE.
	// "" asks the ghc on PATH, once per process, and takes
	// cabalsyntax.DefaultGHC when there is none.
	GHC string
}

// Reader reads .cabal files. The zero value is ready to use.
type Reader struct {
	ghc string
}

var _ backends.PackageReader = (*Reader)(nil)

// New returns a Reader for the GHC on PATH.
func New() *Reader { return &Reader{} }

// NewWithOptions returns a Reader configured by o.
func NewWithOptions(o Options) *Reader { return &Reader{ghc: o.GHC} }

// Read parses the .cabal file at path, or the only *.cabal file in the
// directory path. Errors in the file are *ParseError.
func (r *Reader) Read(ctx context.Context, path string) (deploy.TargetDesc, error) {
	if err := ctx.Err(); err != nil {
		return deploy.TargetDesc{}, err
	}
	if r.ghc != "" && !cabalsyntax.IsVersion(r.ghc) {
		return deploy.TargetDesc{}, fmt.Errorf("cabal reader: GHC version %q: want numbers joined by dots, such as 9.6.7", r.ghc)
	}
	file, err := packageFile(path)
	if err != nil {
		return deploy.TargetDesc{}, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return deploy.TargetDesc{}, fmt.Errorf("read cabal file: %w", err)
	}
	return parse(file, data, cabalsyntax.Host(r.ghc))
}

// packageFile is path itself, or the one *.cabal file in the directory path.
func packageFile(path string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("read cabal file: %w", err)
	}
	if !info.IsDir() {
		return path, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return "", fmt.Errorf("find cabal file: %w", err)
	}
	var found []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".cabal") && len(e.Name()) > len(".cabal") && !e.IsDir() {
			found = append(found, e.Name())
		}
	}
	sort.Strings(found)
	switch len(found) {
	case 0:
		return "", fmt.Errorf("find cabal file: no *.cabal file in %s", path)
	case 1:
		return filepath.Join(path, found[0]), nil
	}
	return "", fmt.Errorf("find cabal file: %d *.cabal files in %s (%s); name the one to read",
		len(found), path, strings.Join(found, ", "))
}

// Parse reads the text of a .cabal file; name is the file's name, for
// TargetDesc.File and errors. Conditionals are evaluated with the flags'
// defaults, for linux on this machine's architecture and the GHC on PATH.
// Errors are *ParseError.
func Parse(name string, data []byte) (deploy.TargetDesc, error) {
	return parse(name, data, cabalsyntax.Host(""))
}

// ParseWith is Parse for the GHC o names.
func ParseWith(name string, data []byte, o Options) (deploy.TargetDesc, error) {
	return parse(name, data, cabalsyntax.Host(o.GHC))
}

func parse(name string, data []byte, pl cabalsyntax.Platform) (deploy.TargetDesc, error) {
	elems, err := parseElements(name, data)
	if err == nil {
		var d deploy.TargetDesc
		d, err = describe(elems, pl)
		if err == nil {
			d.File = name
			return d, nil
		}
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		pe.File = name
	}
	return deploy.TargetDesc{}, err
}
