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

// Reader reads .cabal files. The zero value is ready to use.
type Reader struct{}

var _ backends.PackageReader = (*Reader)(nil)

// New returns a Reader.
func New() *Reader { return &Reader{} }

// Read parses the .cabal file at path, or the only *.cabal file in the
// directory path. Errors in the file are *ParseError.
func (r *Reader) Read(ctx context.Context, path string) (deploy.TargetDesc, error) {
	if err := ctx.Err(); err != nil {
		return deploy.TargetDesc{}, err
	}
	file, err := packageFile(path)
	if err != nil {
		return deploy.TargetDesc{}, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return deploy.TargetDesc{}, fmt.Errorf("read cabal file: %w", err)
	}
	return Parse(file, data)
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
// defaults, for linux on this machine's architecture and GHC. Errors are
// *ParseError.
func Parse(name string, data []byte) (deploy.TargetDesc, error) {
	return parse(name, data, host())
}

func parse(name string, data []byte, pl platform) (deploy.TargetDesc, error) {
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
