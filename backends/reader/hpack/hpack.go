package hpack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/internal/cabalsyntax"
	"github.com/distributive-flow/dflow/deploy"
	"gopkg.in/yaml.v3"
)

// Name is the name that selects this reader in dflow.yaml.
const Name = "hpack"

// FileName is the file a directory argument is searched for.
const FileName = "package.yaml"

// ParseError is a package.yaml that cannot be read: what is wrong, and where.
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
	// HpackDir is hpack's own directory, whose defaults/ holds the
	// defaults files hpack fetched from GitHub; "" is ~/.hpack.
	HpackDir string
}

// Reader reads package.yaml files. The zero value is ready to use.
type Reader struct {
	o Options
}

var _ backends.PackageReader = (*Reader)(nil)

// New returns a Reader for the GHC on PATH.
func New() *Reader { return &Reader{} }

// NewWithOptions returns a Reader configured by o.
func NewWithOptions(o Options) *Reader { return &Reader{o: o} }

// Read parses the package.yaml at path, or path/package.yaml when path is a
// directory. Modules that the file leaves to hpack to find (an omitted
// exposed-modules or other-modules) are found in the source directories
// next to the file; !include and defaults: {local: FILE} read files
// relative to the file that names them. Errors in the file are *ParseError.
func (r *Reader) Read(ctx context.Context, p string) (deploy.TargetDesc, error) {
	if err := ctx.Err(); err != nil {
		return deploy.TargetDesc{}, err
	}
	if r.o.GHC != "" && !cabalsyntax.IsVersion(r.o.GHC) {
		return deploy.TargetDesc{}, fmt.Errorf("hpack reader: GHC version %q: want numbers joined by dots, such as 9.6.7", r.o.GHC)
	}
	info, err := os.Stat(p)
	if err != nil {
		return deploy.TargetDesc{}, fmt.Errorf("read package.yaml: %w", err)
	}
	if info.IsDir() {
		p = filepath.Join(p, FileName)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return deploy.TargetDesc{}, fmt.Errorf("read package.yaml: %w", err)
	}
	ps := &parser{pl: cabalsyntax.Host(r.o.GHC), dir: os.DirFS(filepath.Dir(p)), name: p,
		src: osSource{}, from: p, hpackDir: r.o.HpackDir}
	return ps.run(data)
}

// Parse reads the text of a package.yaml; name is the file's path, for
// TargetDesc.File, errors, and the package name when the file has none (the
// directory's name, as hpack does). No files are looked at: modules the file
// does not list are not inferred, and !include and local defaults are
// errors. Conditions are evaluated for the GHC on PATH. Errors are
// *ParseError.
func Parse(name string, data []byte) (deploy.TargetDesc, error) {
	return ParseFS(name, data, nil)
}

// ParseFS is Parse with the package's directory as dir, where omitted module
// lists are inferred from the source directories as hpack does, and where
// !include and defaults: {local: FILE} find their files (within dir); a nil
// dir reads no files.
func ParseFS(name string, data []byte, dir fs.FS) (deploy.TargetDesc, error) {
	p := &parser{pl: cabalsyntax.Host(""), dir: dir, name: name, from: FileName}
	if dir != nil {
		p.src = fsSource{dir}
	}
	return p.run(data)
}

// run parses data, the text of p.name, and names the file in errors.
func (p *parser) run(data []byte) (deploy.TargetDesc, error) {
	d, err := p.parse(data)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.File = p.name
		}
		return deploy.TargetDesc{}, err
	}
	d.File = p.name
	return d, nil
}

// yamlLine finds the line in yaml.v3's messages ("yaml: line 3: ...").
var yamlLine = regexp.MustCompile(`line (\d+): `)

// decode reads YAML text (its !include tags already inlined) into a
// document node.
func decode(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 1
		if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
			line, _ = strconv.Atoi(msg[m[2]:m[3]])
			msg = msg[:m[0]] + msg[m[1]:]
		}
		msg = strings.ReplaceAll(msg, "\n", "; ")
		return nil, errorAt(line, "invalid YAML: %s", msg)
	}
	return &doc, nil
}

func (p *parser) parse(data []byte) (deploy.TargetDesc, error) {
	data, err := p.inline(p.from, data, 0)
	if err != nil {
		return deploy.TargetDesc{}, err
	}
	doc, err := decode(data)
	if err != nil {
		return deploy.TargetDesc{}, err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return deploy.TargetDesc{}, errorAt(1, "empty file: want a mapping with at least name and version")
	}
	return p.pkg(doc.Content[0])
}

func errorAt(line int, format string, args ...any) error {
	if line < 1 {
		line = 1
	}
	return &ParseError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// clip shortens text quoted in an error message.
func clip(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// Limits that keep hostile input (alias bombs, deep nesting) cheap.
const (
	maxVisits = 200000
	maxDepth  = 64
)

type parser struct {
	pl   cabalsyntax.Platform
	dir  fs.FS
	name string
	// src reads the files !include and local defaults name (nil: none),
	// from is the file being read as src names it, hpackDir is where
	// hpack caches defaults from GitHub ("" = ~/.hpack).
	src      source
	from     string
	hpackDir string
	flags    map[string]bool
	visits   int
	// paths is the Paths_ module hpack adds to inferred other-modules
	// ("" with spec-version 0.36.0 or later, which stopped doing that).
	paths string
}

// field is one key of a mapping, after aliases and merge keys are resolved.
type field struct {
	key  string
	line int
	val  *yaml.Node
}

// resolve follows aliases.
func (p *parser) resolve(n *yaml.Node) (*yaml.Node, error) {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > maxDepth {
			return nil, errorAt(n.Line, "aliases nested too deeply")
		}
		n = n.Alias
	}
	p.visits++
	if p.visits > maxVisits {
		return nil, errorAt(nodeLine(n), "document too large once aliases are expanded")
	}
	return n, nil
}

func nodeLine(n *yaml.Node) int {
	if n == nil {
		return 1
	}
	return n.Line
}

// mapping reads a mapping's fields in order. A merge key (<<: *anchor, or a
// list of anchors) adds the fields of the merged mappings that the mapping
// does not set itself, as YAML 1.1 says. A key given twice is an error.
func (p *parser) mapping(n *yaml.Node, what string) ([]field, error) {
	return p.mappingDepth(n, what, 0)
}

func (p *parser) mappingDepth(n *yaml.Node, what string, depth int) ([]field, error) {
	n, err := p.resolve(n)
	if err != nil {
		return nil, err
	}
	if depth > maxDepth {
		return nil, errorAt(n.Line, "%s: merge keys nested too deeply", what)
	}
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, errorAt(n.Line, "%s: want a mapping, got %s", what, describe(n))
	}
	var own, merged []field
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, err := p.resolve(n.Content[i])
		if err != nil {
			return nil, err
		}
		v := n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, errorAt(k.Line, "%s: want a name as key, got %s", what, describe(k))
		}
		if k.Tag == "!!merge" || (k.Value == "<<" && k.Style == 0) {
			rv, err := p.resolve(v)
			if err != nil {
				return nil, err
			}
			srcs := []*yaml.Node{rv}
			if rv.Kind == yaml.SequenceNode {
				srcs = rv.Content
			}
			for _, src := range srcs {
				fs, err := p.mappingDepth(src, what, depth+1)
				if err != nil {
					return nil, err
				}
				merged = append(merged, fs...)
			}
			continue
		}
		if first, dup := seen[k.Value]; dup {
			return nil, errorAt(k.Line, "%s: %s given twice (first on line %d)", what, clip(k.Value), first)
		}
		seen[k.Value] = k.Line
		own = append(own, field{key: k.Value, line: k.Line, val: v})
	}
	for _, f := range merged {
		if _, ok := seen[f.key]; !ok {
			seen[f.key] = f.line
			own = append(own, f)
		}
	}
	return own, nil
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names a node's kind for an error.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", clip(n.Value))
	}
	return "something else"
}

// scalar reads a string, number or boolean as written.
func (p *parser) scalar(n *yaml.Node, what string) (string, error) {
	n, err := p.resolve(n)
	if err != nil {
		return "", err
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", errorAt(n.Line, "%s: want a single value, got %s", what, describe(n))
	}
	return n.Value, nil
}

// list reads a value that is one string or a list of strings (hpack
// accepts either wherever it wants a list); nothing is an empty list.
func (p *parser) list(n *yaml.Node, what string) ([]string, error) {
	n, err := p.resolve(n)
	if err != nil {
		return nil, err
	}
	if isNull(n) {
		return nil, nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errorAt(n.Line, "%s: want a value or a list, got %s", what, describe(n))
	}
	var out []string
	for _, e := range n.Content {
		s, err := p.scalar(e, what)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// boolean reads true or false.
func (p *parser) boolean(n *yaml.Node, what string) (bool, error) {
	n, err := p.resolve(n)
	if err != nil {
		return false, err
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b, nil
		}
	}
	return false, errorAt(n.Line, "%s: want true or false, got %s", what, describe(n))
}

// pkg reads the top-level mapping.
func (p *parser) pkg(root *yaml.Node) (deploy.TargetDesc, error) {
	top, err := p.mapping(root, "package.yaml")
	if err != nil {
		return deploy.TargetDesc{}, err
	}
	if top, err = p.withDefaults(top, p.from, 0); err != nil {
		return deploy.TargetDesc{}, err
	}
	// Flags first: conditions anywhere may use them.
	p.flags = map[string]bool{}
	for _, f := range top {
		if f.key == "flags" {
			if err := p.readFlags(f); err != nil {
				return deploy.TargetDesc{}, err
			}
		}
	}
	var d deploy.TargetDesc
	var common section
	var library, executable *field
	var executables, tests *field
	var dataDir string
	modernSpec := false
	var extraSource, data, docs, licenses []string
	for _, f := range top {
		if strings.HasPrefix(f.key, "_") || strings.HasPrefix(f.key, "x-") {
			continue // hpack ignores these: anchors live here
		}
		switch f.key {
		case "name":
			if d.Package, err = p.scalar(f.val, f.key); err != nil {
				return d, err
			}
			if !cabalsyntax.IsPackageName(d.Package) {
				return d, errorAt(f.line, "name: invalid package name %q", clip(d.Package))
			}
		case "version":
			if d.Version, err = p.scalar(f.val, f.key); err != nil {
				return d, err
			}
			if !cabalsyntax.IsVersion(d.Version) {
				return d, errorAt(f.line, "version: invalid version %q (want numbers joined by dots, such as 0.1.0.0)", clip(d.Version))
			}
		case "library":
			library = &top[indexOf(top, f.key)]
		case "executable":
			executable = &top[indexOf(top, f.key)]
		case "executables":
			executables = &top[indexOf(top, f.key)]
		case "tests":
			tests = &top[indexOf(top, f.key)]
		case "extra-source-files":
			extraSource, err = p.list(f.val, f.key)
		case "data-files":
			data, err = p.list(f.val, f.key)
		case "data-dir":
			dataDir, err = p.scalar(f.val, f.key)
		case "spec-version":
			var v string
			if v, err = p.scalar(f.val, f.key); err == nil {
				modernSpec = versionAtLeast(v, 0, 36)
			}
		case "extra-doc-files":
			docs, err = p.list(f.val, f.key)
		case "license-file":
			licenses, err = p.list(f.val, f.key)
		default:
			// Other top-level fields (synopsis, ghc-options, ...) do not
			// matter to dflow.
			_, err = p.commonField(&common, f, 0)
		}
		if err != nil {
			return d, err
		}
	}
	if d.Package == "" {
		// hpack names a package without a name after its directory.
		base := filepath.Base(filepath.Dir(p.name))
		if !cabalsyntax.IsPackageName(base) {
			return d, errorAt(1, "missing name field (and the directory name %q is not a package name)", clip(base))
		}
		d.Package = base
	}
	if d.Version == "" {
		d.Version = "0.0.0" // hpack's default
	}
	if !modernSpec {
		p.paths = "Paths_" + strings.ReplaceAll(d.Package, "-", "_")
	}

	if library != nil {
		c, ok, err := p.component(library.val, common, kindLibrary, d.Package, "library")
		if err != nil {
			return d, err
		}
		if ok {
			c.Name = d.Package
			d.Library = &c
		}
	}
	if executable != nil && executables != nil {
		return d, errorAt(executable.line, "executable: give either executable (one, named after the package) or executables, not both (executables on line %d)", executables.line)
	}
	if executable != nil {
		c, ok, err := p.component(executable.val, common, kindExecutable, d.Package, "executable")
		if err != nil {
			return d, err
		}
		if ok {
			d.Executables = append(d.Executables, c)
		}
	}
	for _, group := range []struct {
		f    *field
		kind int
		into *[]deploy.Component
	}{{executables, kindExecutable, &d.Executables}, {tests, kindTest, &d.TestSuites}} {
		if group.f == nil {
			continue
		}
		comps, err := p.mapping(group.f.val, group.f.key)
		if err != nil {
			return d, err
		}
		for _, cf := range comps {
			if !cabalsyntax.IsComponentName(cf.key) {
				return d, errorAt(cf.line, "%s: invalid component name %q (want letters, digits, '-', '_' and '.')", group.f.key, clip(cf.key))
			}
			c, ok, err := p.component(cf.val, common, group.kind, cf.key, group.f.key+"."+cf.key)
			if err != nil {
				return d, err
			}
			if ok {
				*group.into = append(*group.into, c)
			}
		}
	}

	files := append([]string(nil), extraSource...)
	for _, f := range data {
		if dataDir != "" {
			f = path.Join(dataDir, f)
		}
		files = append(files, f)
	}
	files = append(files, docs...)
	if len(licenses) == 0 && p.dir != nil {
		// hpack's default license-file: LICENSE, when it exists.
		if fi, err := fs.Stat(p.dir, "LICENSE"); err == nil && fi.Mode().IsRegular() {
			licenses = []string{"LICENSE"}
		}
	}
	files = append(files, licenses...)
	d.SourceFiles = cabalsyntax.Unique(files)
	return d, nil
}

func indexOf(fs []field, key string) int {
	for i, f := range fs {
		if f.key == key {
			return i
		}
	}
	return -1
}

// readFlags reads the flags mapping: name -> {description, manual, default}.
func (p *parser) readFlags(f field) error {
	flags, err := p.mapping(f.val, "flags")
	if err != nil {
		return err
	}
	for _, fl := range flags {
		if !isFlagName(fl.key) {
			return errorAt(fl.line, "flags: invalid flag name %q", clip(fl.key))
		}
		fields, err := p.mapping(fl.val, "flags."+fl.key)
		if err != nil {
			return err
		}
		def, manual := -1, false
		for _, ff := range fields {
			switch ff.key {
			case "default":
				v, err := p.boolean(ff.val, "flags."+fl.key+".default")
				if err != nil {
					return err
				}
				def = 0
				if v {
					def = 1
				}
			case "manual":
				if _, err := p.boolean(ff.val, "flags."+fl.key+".manual"); err != nil {
					return err
				}
				manual = true
			}
		}
		if def < 0 || !manual {
			missing := "default"
			if def >= 0 {
				missing = "manual"
			}
			return errorAt(fl.line, "flags.%s: missing %s (hpack wants both default and manual)", fl.key, missing)
		}
		p.flags[strings.ToLower(fl.key)] = def == 1
	}
	return nil
}

// isFlagName accepts cabal flag names: letters, digits, '-' and '_'.
func isFlagName(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

const (
	kindLibrary = iota
	kindExecutable
	kindTest
)

// section is what the fields of a component (with the top-level fields and
// taken conditionals merged in) add up to.
type section struct {
	sourceDirs   []string
	deps         []string
	exposed      []string
	other        []string
	generated    []string
	exposedGiven bool
	otherGiven   bool
	main         string
	buildable    *bool
}

func (s section) clone() section {
	c := s
	c.sourceDirs = append([]string(nil), s.sourceDirs...)
	c.deps = append([]string(nil), s.deps...)
	c.exposed = append([]string(nil), s.exposed...)
	c.other = append([]string(nil), s.other...)
	c.generated = append([]string(nil), s.generated...)
	return c
}

// commonField reads a field every section may have (source-dirs,
// dependencies, buildable, when); it reports whether f was one.
func (p *parser) commonField(s *section, f field, depth int) (bool, error) {
	var err error
	switch f.key {
	case "source-dirs":
		var dirs []string
		dirs, err = p.list(f.val, f.key)
		s.sourceDirs = append(s.sourceDirs, dirs...)
	case "dependencies":
		var deps []string
		deps, err = p.dependencies(f.val)
		s.deps = append(s.deps, deps...)
	case "buildable":
		var b bool
		b, err = p.boolean(f.val, f.key)
		s.buildable = &b
	case "when":
		err = p.when(s, f, depth)
	default:
		return false, nil
	}
	return true, err
}

// componentField reads a field of a library, executable or test suite.
func (p *parser) componentField(s *section, f field, kind int, depth int) error {
	if strings.HasPrefix(f.key, "_") {
		return nil
	}
	if ok, err := p.commonField(s, f, depth); ok || err != nil {
		return err
	}
	var err error
	var ms []string
	switch f.key {
	case "main":
		if kind == kindLibrary {
			return nil
		}
		s.main, err = p.scalar(f.val, f.key)
		if err == nil && s.main == "" {
			err = errorAt(f.line, "main: empty")
		}
	case "exposed-modules":
		if ms, err = p.modules(f); err == nil {
			s.exposed = append(s.exposed, ms...)
			s.exposedGiven = s.exposedGiven || depth == 0
		}
	case "other-modules":
		if ms, err = p.modules(f); err == nil {
			s.other = append(s.other, ms...)
			s.otherGiven = s.otherGiven || depth == 0
		}
	case "generated-exposed-modules":
		if ms, err = p.modules(f); err == nil {
			s.exposed = append(s.exposed, ms...)
			s.generated = append(s.generated, ms...)
		}
	case "generated-other-modules":
		if ms, err = p.modules(f); err == nil {
			s.other = append(s.other, ms...)
			s.generated = append(s.generated, ms...)
		}
	}
	return err
}

func (p *parser) modules(f field) ([]string, error) {
	ms, err := p.list(f.val, f.key)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if !cabalsyntax.IsModuleName(m) {
			return nil, errorAt(f.line, "%s: invalid module name %q", f.key, clip(m))
		}
	}
	return ms, nil
}

// when reads a conditional (or a list of them) and applies the taken
// branches to s. A conditional is {condition, fields...} or {condition,
// then, else}.
func (p *parser) when(s *section, f field, depth int) error {
	return p.whenKind(s, f, depth, -1)
}

// whenKind is when for a component of kind (or, with kind -1, for the
// top-level fields every component gets).
func (p *parser) whenKind(s *section, f field, depth, kind int) error {
	if depth > maxDepth {
		return errorAt(f.line, "when: nested too deeply")
	}
	n, err := p.resolve(f.val)
	if err != nil {
		return err
	}
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	for _, item := range items {
		fields, err := p.mapping(item, "when")
		if err != nil {
			return err
		}
		var cond, then, els *field
		var rest []field
		for i := range fields {
			switch fields[i].key {
			case "condition":
				cond = &fields[i]
			case "then":
				then = &fields[i]
			case "else":
				els = &fields[i]
			default:
				rest = append(rest, fields[i])
			}
		}
		line := nodeLine(item)
		if cond == nil {
			return errorAt(line, "when: missing condition")
		}
		taken, err := p.condition(cond)
		if err != nil {
			return err
		}
		if (then == nil) != (els == nil) {
			return errorAt(line, "when: give both then and else, or neither")
		}
		if then != nil && len(rest) > 0 {
			return errorAt(rest[0].line, "when: %s beside then and else: put it in one of them", clip(rest[0].key))
		}
		var branch []field
		switch {
		case then != nil && taken:
			branch, err = p.mapping(then.val, "then")
		case then != nil:
			branch, err = p.mapping(els.val, "else")
		case taken:
			branch = rest
		}
		if err != nil {
			return err
		}
		for _, bf := range branch {
			if kind < 0 {
				_, err = p.commonFieldDepth(s, bf, depth+1)
			} else {
				err = p.componentFieldDepth(s, bf, kind, depth+1)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// condition evaluates a when's condition: a Cabal condition string or a
// YAML boolean.
func (p *parser) condition(f *field) (bool, error) {
	n, err := p.resolve(f.val)
	if err != nil {
		return false, err
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		return p.boolean(n, "condition")
	}
	src, err := p.scalar(n, "condition")
	if err != nil {
		return false, err
	}
	v, err := cabalsyntax.EvalCondition(src, p.flags, p.pl)
	if err != nil {
		return false, errorAt(n.Line, "condition: %v", err)
	}
	return v, nil
}

// The depth-carrying variants route nested whens to the right reader.
func (p *parser) commonFieldDepth(s *section, f field, depth int) (bool, error) {
	if f.key == "when" {
		return true, p.whenKind(s, f, depth, -1)
	}
	return p.commonField(s, f, depth)
}

func (p *parser) componentFieldDepth(s *section, f field, kind, depth int) error {
	if f.key == "when" {
		return p.whenKind(s, f, depth, kind)
	}
	return p.componentField(s, f, kind, depth)
}

// dependencies reads hpack's dependencies: one entry, a list of entries
// (strings "pkg >= 1", or {name: pkg, version: ...}), or a mapping from
// package name to a version range, nothing, or a source ({git, ref}, ...).
func (p *parser) dependencies(n *yaml.Node) ([]string, error) {
	n, err := p.resolve(n)
	if err != nil {
		return nil, err
	}
	switch {
	case isNull(n):
		return nil, nil
	case n.Kind == yaml.MappingNode:
		fields, err := p.mapping(n, "dependencies")
		if err != nil {
			return nil, err
		}
		var out []string
		for _, f := range fields {
			name, ok := cabalsyntax.DependencyName(f.key)
			if !ok || name != f.key {
				return nil, errorAt(f.line, "dependencies: invalid package name %q", clip(f.key))
			}
			if err := p.dependencyVersion(f); err != nil {
				return nil, err
			}
			out = append(out, name)
		}
		return out, nil
	case n.Kind == yaml.ScalarNode:
		name, err := p.dependencyString(n)
		if err != nil {
			return nil, err
		}
		return []string{name}, nil
	case n.Kind == yaml.SequenceNode:
		var out []string
		for _, e := range n.Content {
			e, err := p.resolve(e)
			if err != nil {
				return nil, err
			}
			if e.Kind == yaml.MappingNode {
				fields, err := p.mapping(e, "dependencies")
				if err != nil {
					return nil, err
				}
				i := indexOf(fields, "name")
				if i < 0 {
					return nil, errorAt(e.Line, "dependencies: an entry given as a mapping needs a name")
				}
				name, err := p.scalar(fields[i].val, "dependencies: name")
				if err != nil {
					return nil, err
				}
				if dn, ok := cabalsyntax.DependencyName(name); !ok || dn != name {
					return nil, errorAt(fields[i].line, "dependencies: invalid package name %q", clip(name))
				}
				if j := indexOf(fields, "version"); j >= 0 {
					if err := p.dependencyVersion(fields[j]); err != nil {
						return nil, err
					}
				}
				out = append(out, name)
				continue
			}
			name, err := p.dependencyString(e)
			if err != nil {
				return nil, err
			}
			out = append(out, name)
		}
		return out, nil
	}
	return nil, errorAt(n.Line, "dependencies: want a list or a mapping, got %s", describe(n))
}

// dependencyString reads "pkg", "pkg >= 1 && < 2" or "pkg:sub".
func (p *parser) dependencyString(n *yaml.Node) (string, error) {
	s, err := p.scalar(n, "dependencies")
	if err != nil {
		return "", err
	}
	entry := strings.TrimSpace(s)
	if strings.Contains(entry, ",") && !strings.Contains(entry, "{") {
		return "", errorAt(n.Line, "dependencies: %q: one dependency per entry (make it a list)", clip(entry))
	}
	name, ok := cabalsyntax.DependencyName(entry)
	if !ok {
		return "", errorAt(n.Line, "dependencies: invalid dependency %q (want a package name and an optional version range)", clip(entry))
	}
	return name, nil
}

// dependencyVersion checks a mapping entry's version: a range, a number,
// nothing, or a mapping (a source such as {git, ref} or {version: ...}).
func (p *parser) dependencyVersion(f field) error {
	n, err := p.resolve(f.val)
	if err != nil {
		return err
	}
	switch {
	case isNull(n), n.Kind == yaml.MappingNode:
		return nil
	case n.Kind == yaml.ScalarNode && n.Tag != "!!bool":
		v := n.Value
		if n.Tag == "!!int" || n.Tag == "!!float" {
			v = "==" + v
		}
		if !cabalsyntax.IsVersionRange(v) {
			return errorAt(n.Line, "dependencies: %s: invalid version range %q", clip(f.key), clip(n.Value))
		}
		return nil
	}
	return errorAt(n.Line, "dependencies: %s: want a version range, got %s", clip(f.key), describe(n))
}

// component reads a library, executable or test suite from its mapping
// with the top-level fields merged in, and reports whether it is
// buildable.
func (p *parser) component(n *yaml.Node, common section, kind int, name, what string) (deploy.Component, bool, error) {
	s := common.clone()
	fields, err := p.mapping(n, what)
	if err != nil {
		return deploy.Component{}, false, err
	}
	if fields, err = p.withDefaults(fields, p.from, 0); err != nil {
		return deploy.Component{}, false, err
	}
	for _, f := range fields {
		if err := p.componentFieldDepth(&s, f, kind, 0); err != nil {
			return deploy.Component{}, false, err
		}
	}
	if s.buildable != nil && !*s.buildable {
		return deploy.Component{}, false, nil
	}
	c := deploy.Component{Name: name}
	c.SourceDirs = cabalsyntax.Unique(s.sourceDirs)
	if len(c.SourceDirs) == 0 {
		c.SourceDirs = []string{"."}
	}
	c.BuildDepends = cabalsyntax.Unique(s.deps)
	if kind != kindLibrary {
		if s.main == "" {
			return deploy.Component{}, false, errorAt(nodeLine(n), "%s: missing main", what)
		}
		c.MainIs = mainFile(s.main)
	}
	if kind == kindTest {
		c.Type = "exitcode-stdio-1.0"
	}
	exposed, other := s.exposed, s.other
	if p.dir != nil && (!s.exposedGiven || !s.otherGiven) {
		found, err := p.findModules(c.SourceDirs)
		if err != nil {
			return deploy.Component{}, false, err
		}
		skip := map[string]bool{}
		for _, m := range append(append(append([]string(nil), exposed...), other...), mainModule(s.main)) {
			skip[m] = true
		}
		var rest []string
		for _, m := range found {
			if !skip[m] {
				rest = append(rest, m)
			}
		}
		// hpack: a library without exposed-modules exposes everything not
		// in other-modules; other-modules otherwise gets the rest.
		if kind == kindLibrary && !s.exposedGiven {
			exposed = append(exposed, rest...)
		} else if !s.otherGiven {
			other = append(other, rest...)
		}
	}
	if !s.otherGiven && p.paths != "" {
		other = append(other, p.paths)
	}
	c.Modules = cabalsyntax.Unique(append(append([]string(nil), exposed...), other...))
	return c, true, nil
}

// versionAtLeast reports whether the version v is at least major.minor.
func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(strings.TrimSpace(v), ".", 3)
	num := func(i int) int {
		if i >= len(parts) {
			return 0
		}
		n, _ := strconv.Atoi(parts[i])
		return n
	}
	return num(0) > major || num(0) == major && num(1) >= minor
}

// mainFile is the main-is hpack writes for main: a file as given, a module
// name as its file (Foo.Bar -> Foo/Bar.hs).
func mainFile(m string) string {
	if cabalsyntax.IsModuleName(m) {
		return strings.ReplaceAll(m, ".", "/") + ".hs"
	}
	return m
}

// mainModule is the module of the main file, which is not one of the
// other-modules hpack infers: Foo.Bar for "Foo.Bar" and "Foo/Bar.hs", Main
// for "Main.hs"; "" when main names no module file.
func mainModule(m string) string {
	if cabalsyntax.IsModuleName(m) {
		return m
	}
	m = strings.ReplaceAll(strings.TrimSuffix(m, path.Ext(m)), "/", ".")
	if cabalsyntax.IsModuleName(m) {
		return m
	}
	return ""
}

// sourceExts are the files hpack takes for modules.
var sourceExts = []string{".hs", ".lhs", ".chs", ".hsc", ".y", ".ly", ".x"}

// findModules lists the modules under the source directories, sorted.
func (p *parser) findModules(dirs []string) ([]string, error) {
	var out []string
	for _, dir := range dirs {
		root := path.Clean(filepath.ToSlash(dir))
		if !fs.ValidPath(root) {
			continue // outside the package: hpack would look, dflow does not
		}
		err := fs.WalkDir(p.dir, root, func(fp string, e fs.DirEntry, err error) error {
			if err != nil {
				if fp == root && errors.Is(err, fs.ErrNotExist) {
					return fs.SkipAll
				}
				return err
			}
			if e.IsDir() {
				return nil
			}
			ext := path.Ext(fp)
			ok := false
			for _, x := range sourceExts {
				ok = ok || ext == x
			}
			if !ok {
				return nil
			}
			rel := strings.TrimPrefix(strings.TrimSuffix(fp, ext), root+"/")
			if root == "." {
				rel = strings.TrimSuffix(fp, ext)
			}
			m := strings.ReplaceAll(rel, "/", ".")
			if cabalsyntax.IsModuleName(m) && m != "Setup" {
				out = append(out, m)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("find modules in %s: %w", dir, err)
		}
	}
	sort.Strings(out)
	return out, nil
}
