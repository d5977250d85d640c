package cabal

import (
	"fmt"
	"path"
	"strings"

	"github.com/distributive-flow/dflow/backends/internal/cabalsyntax"
	"github.com/distributive-flow/dflow/deploy"
)

// This file gives meaning to the elements of a .cabal file: it expands
// imports, evaluates conditionals and fills a deploy.TargetDesc.

// packageFields are the fields allowed outside any section (besides x-*).
var packageFields = set(
	"name", "version", "cabal-version", "build-type", "license", "license-file",
	"license-files", "copyright", "maintainer", "author", "stability", "tested-with",
	"homepage", "package-url", "bug-reports", "synopsis", "description", "category",
	"data-files", "data-dir", "extra-source-files", "extra-tmp-files",
	"extra-doc-files", "extra-files",
)

// freeText are the fields whose value is prose, not structure.
var freeText = set("description", "synopsis", "copyright", "author", "maintainer", "category", "stability")

// knownFields are field names that a continuation line of another field is
// unlikely to start with by accident.
var knownFields = set(
	"name", "version", "cabal-version", "build-type", "license", "license-file",
	"data-files", "data-dir", "extra-source-files", "extra-doc-files", "import",
	"main-is", "hs-source-dirs", "exposed-modules", "other-modules", "build-depends",
	"default-language", "default-extensions", "ghc-options", "buildable", "type",
	"test-module", "build-tool-depends", "autogen-modules", "c-sources",
	"include-dirs", "extra-libraries", "pkgconfig-depends", "other-extensions",
	"mixins", "reexported-modules", "cpp-options", "ld-options", "default", "manual",
)

// ignoredSections are top-level sections dflow has no use for.
var ignoredSections = set("benchmark", "foreign-library", "source-repository", "custom-setup")

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// maxExpanded bounds the elements that imports may copy, so that stanzas
// importing each other several times over cannot blow up.
const maxExpanded = 100000

// describer builds a TargetDesc from the elements of one file.
type describer struct {
	pl       cabalsyntax.Platform
	flags    map[string]bool      // flag name (lowercased) -> default
	commons  map[string][]element // common stanza name -> its expanded body
	declared map[string]bool      // every common stanza in the file
	expanded int
	desc     deploy.TargetDesc

	name, version     *element
	dataDir           string
	extraSource, data []string
	docs, licenses    []string
	executables       map[string]bool
	testSuites        map[string]bool
}

// describe gives meaning to the top-level elements of a file.
func describe(elems []element, pl cabalsyntax.Platform) (deploy.TargetDesc, error) {
	d := &describer{
		pl: pl, flags: map[string]bool{}, commons: map[string][]element{},
		declared: map[string]bool{}, executables: map[string]bool{}, testSuites: map[string]bool{},
	}
	if err := flat(elems); err != nil {
		return deploy.TargetDesc{}, err
	}
	if err := d.collect(elems); err != nil {
		return deploy.TargetDesc{}, err
	}
	for _, e := range elems {
		var err error
		if e.section {
			err = d.section(e)
		} else {
			err = d.packageField(e)
		}
		if err != nil {
			return deploy.TargetDesc{}, err
		}
	}
	return d.finish()
}

// flat rejects the flat format of .cabal files before cabal-version 1.2:
// no section at all, the library's fields among the package's, and each
// executable begun by an "executable: NAME" field. Cabal still reads it;
// dflow asks for sections, which say what belongs to what.
func flat(elems []element) error {
	var first *element
	for i, e := range elems {
		if e.section {
			return nil
		}
		if first == nil && !packageFields[e.name] && !strings.HasPrefix(e.name, "x-") {
			first = &elems[i]
		}
	}
	if first == nil {
		return nil
	}
	return errorAt(first.line, "%s: this is the flat .cabal format of before cabal-version 1.2 (component fields such as build-depends, exposed-modules and executable: outside any section), which dflow does not read: put the library's fields under a \"library\" section and each \"executable: NAME\" with its fields under \"executable NAME\", and set cabal-version: 1.12 or later", first.name)
}

func errorAt(line int, format string, args ...any) error {
	return &ParseError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// collect reads the flag stanzas, which conditions anywhere may use, and
// notes the names of the common stanzas.
func (d *describer) collect(elems []element) error {
	for _, e := range elems {
		switch {
		case e.section && e.name == "common":
			d.declared[e.args] = true
		case e.section && e.name == "flag":
			if err := d.flag(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// flag records a flag stanza's default (True unless it says otherwise).
func (d *describer) flag(e element) error {
	name := strings.ToLower(e.args)
	if !cabalsyntax.IsName(name) {
		return errorAt(e.line, "flag stanza needs a name, got %q", clip(e.args))
	}
	if _, dup := d.flags[name]; dup {
		return errorAt(e.line, "flag %s is declared twice", name)
	}
	def := true
	for _, f := range e.body {
		if f.section {
			return errorAt(f.line, "unexpected section %s inside flag %s", clip(f.name), name)
		}
		if f.name != "default" && f.name != "manual" {
			continue
		}
		v, err := boolean(f)
		if err != nil {
			return err
		}
		if f.name == "default" {
			def = v
		}
	}
	d.flags[name] = def
	return nil
}

// packageField reads a field outside any section.
func (d *describer) packageField(e element) error {
	if !packageFields[e.name] && !strings.HasPrefix(e.name, "x-") {
		return errorAt(e.line, "field %s is not a package field; it belongs inside a section such as library or executable", clip(e.name))
	}
	var err error
	switch e.name {
	case "name":
		d.name = &e
	case "version":
		d.version = &e
	case "data-dir":
		d.dataDir, err = single(e)
	case "extra-source-files":
		err = appendWords(&d.extraSource, e)
	case "data-files":
		err = appendWords(&d.data, e)
	case "extra-doc-files":
		err = appendWords(&d.docs, e)
	case "license-file", "license-files":
		err = appendWords(&d.licenses, e)
	}
	return err
}

func appendWords(to *[]string, e element) error {
	ws, err := words(e)
	*to = append(*to, ws...)
	return err
}

// section reads a top-level section.
func (d *describer) section(e element) error {
	switch e.name {
	case "flag":
		return nil // read by collect
	case "common":
		return d.common(e)
	case "library":
		if e.args != "" {
			if !cabalsyntax.IsPackageName(e.args) {
				return errorAt(e.line, "invalid library name %q", clip(e.args))
			}
			return nil // a named sub-library: dflow deploys the main one
		}
		if d.desc.Library != nil {
			return errorAt(e.line, "second library section (the first has no name either)")
		}
		c, buildable, err := d.component(e)
		if buildable && err == nil {
			d.desc.Library = &c
		}
		return err
	case "executable":
		return d.named(e, d.executables, &d.desc.Executables)
	case "test-suite":
		return d.named(e, d.testSuites, &d.desc.TestSuites)
	case "if", "elif", "else":
		return errorAt(e.line, "%s outside any section: conditionals belong inside a library, executable, test-suite or common stanza", e.name)
	}
	if ignoredSections[e.name] {
		return nil
	}
	return errorAt(e.line, "unknown section %q (a field needs a ':' after its name)", clip(e.name+" "+e.args))
}

// common expands a common stanza's imports and keeps it for later imports.
func (d *describer) common(e element) error {
	if !cabalsyntax.IsPackageName(e.args) {
		return errorAt(e.line, "common stanza needs a name, got %q", clip(e.args))
	}
	if _, dup := d.commons[e.args]; dup {
		return errorAt(e.line, "common stanza %s is defined twice", e.args)
	}
	body, err := d.expand(e.body)
	if err != nil {
		return err
	}
	d.commons[e.args] = body
	return nil
}

// named reads an executable or test suite, which must have a unique name.
// Cabal takes the name as written, also one that is not a package name
// (cachix has "executable .cachix-deployment"), or a "quoted" one.
func (d *describer) named(e element, seen map[string]bool, into *[]deploy.Component) error {
	if len(e.args) >= 2 && e.args[0] == '"' && e.args[len(e.args)-1] == '"' {
		e.args = e.args[1 : len(e.args)-1]
	}
	if e.args == "" {
		return errorAt(e.line, "%s section needs a name", e.name)
	}
	if !cabalsyntax.IsComponentName(e.args) {
		return errorAt(e.line, "%s section: invalid name %q (want letters, digits, '-', '_' and '.')", e.name, clip(e.args))
	}
	if seen[e.args] {
		return errorAt(e.line, "%s %s is defined twice", e.name, e.args)
	}
	seen[e.args] = true
	c, buildable, err := d.component(e)
	if buildable && err == nil {
		*into = append(*into, c)
	}
	return err
}

// expand replaces import fields by the bodies of the common stanzas they
// name, at any depth.
func (d *describer) expand(body []element) ([]element, error) {
	out := make([]element, 0, len(body))
	for _, e := range body {
		switch {
		case e.section:
			b, err := d.expand(e.body)
			if err != nil {
				return nil, err
			}
			e.body = b
			out = append(out, e)
		case e.name == "import":
			names, err := words(e)
			if err != nil {
				return nil, err
			}
			if len(names) == 0 {
				return nil, errorAt(e.line, "import names no common stanza")
			}
			for _, n := range names {
				c, err := d.imported(n, e.line)
				if err != nil {
					return nil, err
				}
				out = append(out, c...)
			}
		default:
			out = append(out, e)
		}
	}
	return out, nil
}

// imported is the body of the common stanza an import on line names.
func (d *describer) imported(name string, line int) ([]element, error) {
	c, ok := d.commons[name]
	if !ok {
		if d.declared[name] {
			return nil, errorAt(line, "import of common stanza %s before its definition (define it above)", clip(name))
		}
		return nil, errorAt(line, "import of unknown common stanza %s", clip(name))
	}
	d.expanded += len(c)
	if d.expanded > maxExpanded {
		return nil, errorAt(line, "imports expand to more than %d fields", maxExpanded)
	}
	return c, nil
}

// flatten evaluates the conditionals of an expanded body and returns the
// fields that apply: the body's own fields first, then those of the
// branches taken, in order (as cabal merges them).
func (d *describer) flatten(body []element, in string) ([]element, error) {
	var fields, branches []element
	for i := 0; i < len(body); i++ {
		e := body[i]
		if !e.section {
			fields = append(fields, e)
			continue
		}
		switch e.name {
		case "if":
			taken, next, err := d.chain(body, i)
			if err != nil {
				return nil, err
			}
			i = next - 1
			if taken == nil {
				continue
			}
			fs, err := d.flatten(taken.body, in)
			if err != nil {
				return nil, err
			}
			branches = append(branches, fs...)
		case "elif", "else":
			return nil, errorAt(e.line, "%s without an if before it", e.name)
		default:
			return nil, errorAt(e.line, "unknown section %q inside %s (a field needs a ':' after its name)", clip(e.name+" "+e.args), in)
		}
	}
	return append(fields, branches...), nil
}

// chain evaluates the if at body[i] with the elif and else sections that
// follow it. It returns the branch taken (nil for none) and the index after
// the chain.
func (d *describer) chain(body []element, i int) (*element, int, error) {
	var taken *element
	for j := i; j < len(body); j++ {
		e := &body[j]
		if j > i && !(e.section && (e.name == "elif" || e.name == "else")) {
			return taken, j, nil
		}
		if e.name == "else" {
			if e.args != "" {
				return nil, 0, errorAt(e.line, "else takes no condition, got %q", clip(e.args))
			}
			if taken == nil {
				taken = e
			}
			return taken, j + 1, nil
		}
		ok, err := cabalsyntax.EvalCondition(e.args, d.flags, d.pl)
		if err != nil {
			return nil, 0, errorAt(e.line, "%s: %v", e.name, err)
		}
		if ok && taken == nil {
			taken = e
		}
	}
	return taken, len(body), nil
}

// component reads a library, executable or test suite, and reports whether
// it is buildable.
func (d *describer) component(e element) (deploy.Component, bool, error) {
	body, err := d.expand(e.body)
	if err != nil {
		return deploy.Component{}, false, err
	}
	fields, err := d.flatten(body, e.name)
	if err != nil {
		return deploy.Component{}, false, err
	}
	return fill(e, fields)
}

// fill reads the fields that apply to a component.
func fill(e element, fields []element) (deploy.Component, bool, error) {
	c := deploy.Component{Name: e.args}
	var exposed, other, testModule []string
	buildable := true
	for _, f := range fields {
		var err error
		switch f.name {
		case "main-is":
			if e.name != "library" {
				c.MainIs, err = single(f)
			}
		case "type":
			if e.name == "test-suite" {
				c.Type, err = single(f)
			}
		case "hs-source-dirs", "hs-source-dir":
			err = appendWords(&c.SourceDirs, f)
		case "exposed-modules":
			err = appendModules(&exposed, f)
		case "other-modules":
			err = appendModules(&other, f)
		case "test-module":
			err = appendModules(&testModule, f)
		case "build-depends":
			var deps []string
			deps, err = dependencies(f)
			c.BuildDepends = append(c.BuildDepends, deps...)
		case "buildable":
			buildable, err = boolean(f)
		}
		if err != nil {
			return deploy.Component{}, false, err
		}
	}
	c.Modules = cabalsyntax.Unique(append(append(testModule, exposed...), other...))
	c.SourceDirs = cabalsyntax.Unique(c.SourceDirs)
	if len(c.SourceDirs) == 0 {
		c.SourceDirs = []string{"."}
	}
	c.BuildDepends = cabalsyntax.Unique(c.BuildDepends)
	if e.name == "test-suite" && c.Type == "" {
		c.Type = inferTestType(c.MainIs, testModule)
	}
	return c, buildable, nil
}

func appendModules(to *[]string, e element) error {
	ws, err := words(e)
	if err != nil {
		return err
	}
	for _, m := range ws {
		if !cabalsyntax.IsModuleName(m) {
			return errorAt(e.line, "%s: invalid module name %q", e.name, clip(m))
		}
	}
	*to = append(*to, ws...)
	return nil
}

// inferTestType is the type cabal 3 gives a test suite that names none.
func inferTestType(mainIs string, testModule []string) string {
	switch {
	case mainIs != "":
		return "exitcode-stdio-1.0"
	case len(testModule) > 0:
		return "detailed-0.9"
	}
	return ""
}

// finish checks the package fields and completes the description.
func (d *describer) finish() (deploy.TargetDesc, error) {
	if d.name == nil {
		return deploy.TargetDesc{}, errorAt(1, "missing name field")
	}
	if d.version == nil {
		return deploy.TargetDesc{}, errorAt(1, "missing version field")
	}
	name := d.name.joined()
	if !cabalsyntax.IsPackageName(name) {
		return deploy.TargetDesc{}, errorAt(d.name.line, "name: invalid package name %q", clip(name))
	}
	version := d.version.joined()
	if !cabalsyntax.IsVersion(version) {
		return deploy.TargetDesc{}, errorAt(d.version.line, "version: invalid version %q (want numbers joined by dots, such as 0.1.0.0)", clip(version))
	}
	d.desc.Package, d.desc.Version = name, version
	if d.desc.Library != nil {
		d.desc.Library.Name = name
	}
	files := append([]string(nil), d.extraSource...)
	for _, f := range d.data {
		if d.dataDir != "" {
			f = path.Join(d.dataDir, f)
		}
		files = append(files, f)
	}
	files = append(files, d.docs...)
	files = append(files, d.licenses...)
	d.desc.SourceFiles = cabalsyntax.Unique(files)
	return d.desc, nil
}
