package hpack_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/distributive-flow/dflow/backends/reader/hpack"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/stretchr/testify/require"
)

func comp(name, mainIs string, dirs, mods, deps []string) deploy.Component {
	return deploy.Component{Name: name, MainIs: mainIs, SourceDirs: dirs, Modules: mods, BuildDepends: deps}
}

func l(s ...string) []string { return s }

func test(c deploy.Component) deploy.Component { c.Type = "exitcode-stdio-1.0"; return c }

func TestCorpus(t *testing.T) {
	lib := func(c deploy.Component) *deploy.Component { return &c }
	for _, tc := range []struct {
		file string
		as   string // the name Parse is given, when not testdata/FILE
		want deploy.TargetDesc
	}{
		{file: "simple.yaml", want: deploy.TargetDesc{
			Package: "hello", Version: "0.1.0.0",
			Library:     lib(comp("hello", "", l("src"), l("Hello", "Paths_hello"), l("base"))),
			Executables: []deploy.Component{comp("hello", "Main.hs", l("app"), l("Paths_hello"), l("base", "hello"))},
		}},
		{file: "full.yaml", want: deploy.TargetDesc{
			Package: "web-app", Version: "1.2.3",
			Library: lib(comp("web-app", "", l("common", "src"),
				l("Web.App", "Web.App.Routes", "Web.App.Internal", "Paths_web_app"), l("base", "text", "warp", "wai"))),
			Executables: []deploy.Component{
				comp("web-app", "Main.hs", l("common", "app"), nil, l("base", "text", "web-app")),
				comp("web-admin", "Admin/Main.hs", l("common", "admin"), l("Admin.Pages"), l("base", "text", "web-app", "optparse-applicative")),
			},
			TestSuites: []deploy.Component{
				test(comp("spec", "Spec.hs", l("common", "test"), nil, l("base", "text", "web-app", "hspec"))),
				test(comp("doctest", "Doctest.hs", l("common", "doctest"), nil, l("base", "text"))),
			},
			SourceFiles: l("README.md", "CHANGELOG.md", "static/css/*.css", "static/index.html", "docs/*.md", "LICENSE"),
		}},
		{file: "when.yaml", want: deploy.TargetDesc{
			Package: "cond", Version: "2.0",
			Library: lib(comp("cond", "", l("src", "fast"), l("Cond", "Cond.Release", "Paths_cond"), l("base", "unix", "primitive"))),
			Executables: []deploy.Component{
				comp("cond", "Main.hs", l("."), l("Paths_cond"), l("base", "unix")),
			},
		}},
		{file: "maps.yaml", want: deploy.TargetDesc{
			Package: "maps", Version: "0.0.1",
			Executables: []deploy.Component{
				comp("maps", "app/Main.hs", l("."), l("Paths_maps"), l("base", "aeson", "containers", "my-fork", "bytestring", "maps")),
			},
			TestSuites: []deploy.Component{
				test(comp("maps-test", "Test.hs", l("test", "src"), l("Paths_maps"), l("base", "aeson", "containers", "my-fork", "tasty"))),
			},
		}},
		{file: "anchors.yaml", want: deploy.TargetDesc{
			Package: "anchors", Version: "3.1.4.1",
			Library: lib(comp("anchors", "", l("src"), l("Anchors", "Paths_anchors"), l("base", "mtl"))),
			Executables: []deploy.Component{
				comp("one", "Main.hs", l("one"), l("Paths_anchors"), l("anchors")),
				// A merge takes each key from the first mapping that has
				// it: dependencies come from *exe alone.
				comp("two", "Main.hs", l("two"), l("Paths_anchors"), l("anchors")),
			},
		}},
		{file: "minimal.yaml", as: "work/tiny-pkg/package.yaml", want: deploy.TargetDesc{
			Package: "tiny-pkg", Version: "0.0.0",
			Executables: []deploy.Component{comp("tiny", "Main.hs", l("."), l("Paths_tiny_pkg"), nil)},
		}},
		{file: "quoted.yaml", want: deploy.TargetDesc{
			Package: "json-style", Version: "0.2",
			Library:    lib(comp("json-style", "", l("."), l("A", "B.C", "Paths_json_style"), l("base", "text"))),
			TestSuites: []deploy.Component{test(comp("t", "T.hs", l("."), l("Paths_json_style"), nil))},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			require.NoError(t, err)
			name := tc.as
			if name == "" {
				name = filepath.Join("testdata", tc.file)
			}
			got, err := hpack.Parse(name, data)
			require.NoError(t, err)
			tc.want.File = name
			require.Equal(t, tc.want, got)
		})
	}
}

// TestInferModules: modules the file does not list are found in the source
// directories, as hpack does; a LICENSE file is the default license-file.
func TestInferModules(t *testing.T) {
	fsys := fstest.MapFS{
		"LICENSE":               {Data: []byte("BSD")},
		"src/Hello.hs":          {},
		"src/Hello/Internal.hs": {},
		"src/Hello/Parser.y":    {},
		"src/notes.txt":         {},
		"src/lower/Skip.hs":     {},
		"app/Main.hs":           {},
		"app/Options.hs":        {},
		"test/Spec.hs":          {},
		"test/HelloSpec.hs":     {},
	}
	src := []byte(`
name: hello
library:
  source-dirs: src
  other-modules: Hello.Internal
executables:
  hello: {main: Main.hs, source-dirs: app}
tests:
  spec: {main: Spec.hs, source-dirs: [test, missing]}
`)
	got, err := hpack.ParseFS("package.yaml", src, fsys)
	require.NoError(t, err)
	require.Equal(t, l("Hello", "Hello.Parser", "Hello.Internal"), got.Library.Modules)
	require.Equal(t, l("Options", "Paths_hello"), got.Executables[0].Modules, "hpack before spec-version 0.36 adds Paths_")
	require.Equal(t, l("HelloSpec", "Paths_hello"), got.TestSuites[0].Modules)
	require.Equal(t, l("LICENSE"), got.SourceFiles)
}

func TestReadDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my-app")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "src", "My"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "src", "My", "App.hs"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("library:\n  source-dirs: src\n"), 0o644))
	got, err := hpack.New().Read(context.Background(), dir)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "package.yaml"), got.File)
	require.Equal(t, "my-app", got.Package)
	require.Equal(t, l("My.App", "Paths_my_app"), got.Library.Modules)

	_, err = hpack.New().Read(context.Background(), t.TempDir())
	require.ErrorContains(t, err, "package.yaml: no such file")
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"defaults without a ref", "name: a\ndefaults:\n  github: sol/hpack-template\n", "p/package.yaml:3: defaults: github sol/hpack-template: missing ref"},
		{"defaults in a component", "name: a\nlibrary:\n  defaults: x/y\n", `p/package.yaml:3: defaults: "x/y": want OWNER/REPO@REF`},
		{"defaults from GitHub", "name: a\ndefaults: sol/hpack-template@2017\n", "p/package.yaml:2: defaults: sol/hpack-template@2017 is on GitHub, and dflow does not download"},
		{"local defaults without files", "name: a\ndefaults:\n  local: d.yaml\n", "p/package.yaml:3: defaults: local d.yaml: cannot read other files here"},
		{"include without files", "name: a\n_: !include v.yaml\n", "p/package.yaml:2: !include v.yaml: cannot read other files here"},
		{"yaml syntax", "name: a\nlibrary:\n  - x\n  y: z\n", "p/package.yaml:2: invalid YAML: did not find expected '-' indicator"},
		{"tab indent", "name: a\nlibrary:\n\tsource-dirs: src\n", "p/package.yaml:3: invalid YAML: found character that cannot start any token"},
		{"empty", "", "p/package.yaml:1: empty file"},
		{"not a mapping", "- a\n- b\n", "p/package.yaml:1: package.yaml: want a mapping, got a list"},
		{"bad name", "name: 9\n", `p/package.yaml:1: name: invalid package name "9"`},
		{"bad version", "name: a\nversion: 1.x\n", `p/package.yaml:2: version: invalid version "1.x"`},
		{"name list", "name: [a]\n", "p/package.yaml:1: name: want a single value, got a list"},
		{"duplicate", "name: a\nversion: 1\nname: b\n", "p/package.yaml:3: package.yaml: name given twice (first on line 1)"},
		{"missing main", "name: a\nexecutables:\n  a:\n    source-dirs: app\n", "p/package.yaml:4: executables.a: missing main"},
		{"bad module", "name: a\nlibrary:\n  exposed-modules: [Good, bad]\n", `p/package.yaml:3: exposed-modules: invalid module name "bad"`},
		{"bad dependency", "name: a\ndependencies:\n  - base\n  - \"base >= x\"\n", `p/package.yaml:4: dependencies: invalid dependency "base >= x"`},
		{"comma dependency", "name: a\ndependencies: base, text\n", `p/package.yaml:2: dependencies: "base, text": one dependency per entry`},
		{"bad dep map", "name: a\ndependencies:\n  base: [1]\n", "p/package.yaml:3: dependencies: base: want a version range, got a list"},
		{"undefined flag", "name: a\nlibrary:\n  when:\n    condition: flag(nope)\n", `p/package.yaml:4: condition: undefined flag "nope"`},
		{"bad condition", "name: a\nwhen:\n  condition: os(linux) &&\n  dependencies: unix\n", `p/package.yaml:3: condition: condition "os(linux) &&" ends too early`},
		{"missing condition", "name: a\nwhen:\n  dependencies: unix\n", "p/package.yaml:3: when: missing condition"},
		{"then without else", "name: a\nwhen:\n  condition: true\n  then: {dependencies: x}\n", "p/package.yaml:3: when: give both then and else"},
		{"flag without default", "name: a\nflags:\n  dev:\n    manual: true\n", "p/package.yaml:3: flags.dev: missing default"},
		{"flag default not bool", "name: a\nflags:\n  dev:\n    manual: true\n    default: yes please\n", `p/package.yaml:5: flags.dev.default: want true or false, got "yes please"`},
		{"both executable forms", "name: a\nexecutable:\n  main: M.hs\nexecutables:\n  b: {main: M.hs}\n", "p/package.yaml:2: executable: give either executable"},
		{"bad component name", "name: a\nexecutables:\n  \"a b\": {main: M.hs}\n", `p/package.yaml:3: executables: invalid component name "a b"`},
		{"no name, bad dir", "version: 1\n", `9/package.yaml:1: missing name field (and the directory name "9" is not a package name)`},
		{"alias bomb", bomb(), "document too large once aliases are expanded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := "p"
			if tc.name == "no name, bad dir" {
				dir = "9"
			}
			_, err := hpack.Parse(dir+"/package.yaml", []byte(tc.src))
			require.ErrorContains(t, err, tc.want)
			var pe *hpack.ParseError
			require.True(t, errors.As(err, &pe), "%T", err)
			require.Equal(t, dir+"/package.yaml", pe.File)
		})
	}
}

// bomb is the billion laughs, in merge keys: 4^30 mappings merged.
func bomb() string {
	s := "name: a\n_a: &a {x: 1, y: 2}\n"
	prev := "a"
	for i := 0; i < 30; i++ {
		cur := fmt.Sprintf("l%d", i)
		s += "_" + cur + ": &" + cur + " {<<: [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]}\n"
		prev = cur
	}
	return s + "library:\n  <<: *" + prev + "\n"
}
