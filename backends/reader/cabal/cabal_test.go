package cabal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distributive-flow/dflow/backends/internal/cabalsyntax"
	"github.com/distributive-flow/dflow/deploy"
)

// linuxX86 is the platform the corpus expectations are written for.
var linuxX86 = cabalsyntax.Platform{OS: "linux", Arch: "x86_64", GHC: "9.6.7"}

func TestCorpus(t *testing.T) {
	tests := []struct {
		file string
		want deploy.TargetDesc
	}{
		{"webapp.cabal", deploy.TargetDesc{
			Package: "webapp", Version: "0.2.1.0",
			Library: &deploy.Component{Name: "webapp", SourceDirs: []string{"src"}, Modules: []string{"WebApp"},
				BuildDepends: []string{"base", "wai", "http-types", "bytestring"}},
			Executables: []deploy.Component{{Name: "webapp", MainIs: "Main.hs", SourceDirs: []string{"app"},
				BuildDepends: []string{"base", "webapp", "warp", "unix"}}},
			TestSuites: []deploy.Component{{Name: "spec", Type: "exitcode-stdio-1.0", MainIs: "Spec.hs", SourceDirs: []string{"test"},
				BuildDepends: []string{"base", "webapp", "wai", "http-types", "bytestring"}}},
		}},
		{"oldstyle.cabal", deploy.TargetDesc{
			Package: "oldstyle", Version: "1.4.2",
			Library: &deploy.Component{Name: "oldstyle", SourceDirs: []string{"lib"},
				Modules:      []string{"Old.Style", "Old.Style.Internal", "Old.Style.Util"},
				BuildDepends: []string{"base", "containers", "mtl"}},
			Executables: []deploy.Component{{Name: "old-style", MainIs: "Main.hs", SourceDirs: []string{"exe"},
				BuildDepends: []string{"base", "oldstyle"}}},
			TestSuites: []deploy.Component{{Name: "tests", Type: "exitcode-stdio-1.0", MainIs: "Tests.hs", SourceDirs: []string{"tests"},
				Modules: []string{"Old.StyleSpec"}, BuildDepends: []string{"base", "oldstyle", "HUnit"}}},
			SourceFiles: []string{"README.md", "CHANGELOG.md", "LICENSE"},
		}},
		{"braces.cabal", deploy.TargetDesc{
			Package: "braces", Version: "0.1",
			Library: &deploy.Component{Name: "braces", SourceDirs: []string{"."}, Modules: []string{"Braces"},
				BuildDepends: []string{"base"}},
			Executables: []deploy.Component{
				{Name: "braces", MainIs: "Main.hs", SourceDirs: []string{"app"},
					BuildDepends: []string{"base", "braces", "containers", "unix"}},
				{Name: "next-line-brace", MainIs: "Other.hs", SourceDirs: []string{"."},
					BuildDepends: []string{"x86-only"}},
			},
			TestSuites: []deploy.Component{{Name: "brace-tests", Type: "exitcode-stdio-1.0", MainIs: "T.hs", SourceDirs: []string{"."},
				BuildDepends: []string{"base", "braces"}}},
		}},
		{"commons.cabal", deploy.TargetDesc{
			Package: "commons", Version: "2.0.0",
			Library: &deploy.Component{Name: "commons", SourceDirs: []string{"src"}, Modules: []string{"Commons"},
				BuildDepends: []string{"base", "text", "containers", "aeson"}},
			Executables: []deploy.Component{
				{Name: "commons-cli", MainIs: "Cli.hs", SourceDirs: []string{"app"},
					BuildDepends: []string{"base", "text", "containers", "commons", "aeson"}},
				{Name: "commons-server", MainIs: "Server.hs", SourceDirs: []string{"app"},
					BuildDepends: []string{"base", "text", "containers", "aeson", "warp"}},
			},
		}},
		{"flags.cabal", deploy.TargetDesc{
			Package: "flags", Version: "3.1.4",
			Library: &deploy.Component{Name: "flags", SourceDirs: []string{"."}, Modules: []string{"Flags", "Flags.Native"},
				BuildDepends: []string{"base", "tls", "crypton", "base-compat"}},
			Executables: []deploy.Component{{Name: "flags", MainIs: "Main.hs", SourceDirs: []string{"exe"},
				BuildDepends: []string{"base", "flags"}}},
		}},
		{"multi.cabal", deploy.TargetDesc{
			Package: "multi", Version: "0.0.1",
			Library: &deploy.Component{Name: "multi", SourceDirs: []string{"."}, Modules: []string{"Multi"},
				BuildDepends: []string{"base"}},
			Executables: []deploy.Component{
				{Name: "multi-a", MainIs: "A.hs", SourceDirs: []string{"exe-a"}, BuildDepends: []string{"base", "multi"}},
				{Name: "multi-b", MainIs: "B.hs", SourceDirs: []string{"exe-b", "shared"},
					Modules: []string{"Shared.Util", "Shared.Log"}, BuildDepends: []string{"base", "multi"}},
				{Name: "multi-c", MainIs: "C.hs", SourceDirs: []string{"."}, BuildDepends: []string{"base"}},
			},
		}},
		{"tabs.cabal", deploy.TargetDesc{
			Package: "tabbed", Version: "1.0",
			Library: &deploy.Component{Name: "tabbed", SourceDirs: []string{"src"}, Modules: []string{"Tabbed", "Tabbed.Types"},
				BuildDepends: []string{"base", "text", "extra"}},
			Executables: []deploy.Component{{Name: "tabbed", MainIs: "Main.hs", SourceDirs: []string{"."},
				BuildDepends: []string{"base", "tabbed"}}},
		}},
		{"comments.cabal", deploy.TargetDesc{
			Package: "comments", Version: "0.3",
			Library: &deploy.Component{Name: "comments", SourceDirs: []string{"src"}, Modules: []string{"Comments", "Comments.Extra"},
				BuildDepends: []string{"base"}},
			Executables: []deploy.Component{{Name: "comments", MainIs: "Main.hs", SourceDirs: []string{"."},
				BuildDepends: []string{"base", "comments"}}},
		}},
		{"leading-commas.cabal", deploy.TargetDesc{
			Package: "leading-commas", Version: "1.0.0",
			Library: &deploy.Component{Name: "leading-commas", SourceDirs: []string{"src", "gen"},
				Modules: []string{"LeadingCommas", "LeadingCommas.Types"}, BuildDepends: []string{"base", "bytestring", "text"}},
			Executables: []deploy.Component{{Name: "lc", MainIs: "Main.hs", SourceDirs: []string{"."},
				BuildDepends: []string{"base", "leading-commas"}}},
			SourceFiles: []string{"README.md", "CHANGELOG.md"},
		}},
		{"custom-fields.cabal", deploy.TargetDesc{
			Package: "custom-fields", Version: "0.9",
			Library: &deploy.Component{Name: "custom-fields", SourceDirs: []string{"."}, Modules: []string{"Custom"},
				BuildDepends: []string{"base"}},
			TestSuites: []deploy.Component{{Name: "doctests", Type: "exitcode-stdio-1.0", MainIs: "doctests.hs", SourceDirs: []string{"."},
				BuildDepends: []string{"base", "doctest"}}},
		}},
		{"non-buildable.cabal", deploy.TargetDesc{
			Package: "non-buildable", Version: "1",
			Library: &deploy.Component{Name: "non-buildable", SourceDirs: []string{"."}, Modules: []string{"NB"},
				BuildDepends: []string{"base"}},
			Executables: []deploy.Component{{Name: "nb-client", MainIs: "Client.hs", SourceDirs: []string{"."},
				BuildDepends: []string{"base"}}},
			TestSuites: []deploy.Component{{Name: "nb-detailed", Type: "detailed-0.9", SourceDirs: []string{"."},
				Modules: []string{"NB.Tests"}, BuildDepends: []string{"base", "Cabal"}}},
		}},
		{"data-files.cabal", deploy.TargetDesc{
			Package: "data-files", Version: "0.1.0",
			Library: &deploy.Component{Name: "data-files", SourceDirs: []string{"."}, Modules: []string{"DataFiles", "Paths_data_files"},
				BuildDepends: []string{"base"}},
			SourceFiles: []string{"cbits/*.h", "include/data.h",
				"share/templates/*.html", "share/static/my logo.png", "share/config/default.yaml",
				"README.md", "CHANGELOG.md", "LICENSE", "NOTICE"},
		}},
		{"modern.cabal", deploy.TargetDesc{
			Package: "modern", Version: "2024.1.0.7",
			Library: &deploy.Component{Name: "modern", SourceDirs: []string{"src"}, Modules: []string{"Modern", "Modern.Api"},
				BuildDepends: []string{"base", "text", "modern", "lens", "containers"}},
			Executables: []deploy.Component{{Name: "modern", MainIs: "Main.hs", SourceDirs: []string{"app"},
				BuildDepends: []string{"base", "modern"}}},
			TestSuites: []deploy.Component{{Name: "modern-test", Type: "exitcode-stdio-1.0", MainIs: "Driver.hs", SourceDirs: []string{"test"},
				BuildDepends: []string{"base", "modern", "tasty"}}},
		}},
		{"crlf-bom.cabal", deploy.TargetDesc{
			Package: "crlf", Version: "0.0.0.1",
			Library: &deploy.Component{Name: "crlf", SourceDirs: []string{"."}, Modules: []string{"Crlf"},
				BuildDepends: []string{"base"}},
			Executables: []deploy.Component{{Name: "crlf", MainIs: "Main.hs", SourceDirs: []string{"."},
				BuildDepends: []string{"base", "crlf"}}},
		}},
		{"uneven-indent.cabal", deploy.TargetDesc{
			Package: "uneven-indent", Version: "0.5",
			Library: &deploy.Component{Name: "uneven-indent", SourceDirs: []string{"src"},
				Modules:      []string{"Uneven", "Uneven.Two", "Uneven.Three", "Uneven.Visible"},
				BuildDepends: []string{"base", "text"}},
			Executables: []deploy.Component{{Name: "uneven", MainIs: "Main.hs", SourceDirs: []string{"."},
				BuildDepends: []string{"base"}}},
		}},
		{"hpack-generated.cabal", deploy.TargetDesc{
			Package: "generated", Version: "0.1.0.0",
			Library: &deploy.Component{Name: "generated", SourceDirs: []string{"src"}, Modules: []string{"Lib", "Paths_generated"},
				BuildDepends: []string{"base"}},
			Executables: []deploy.Component{{Name: "generated-exe", MainIs: "Main.hs", SourceDirs: []string{"app"},
				Modules: []string{"Paths_generated"}, BuildDepends: []string{"base", "generated"}}},
			TestSuites: []deploy.Component{{Name: "generated-test", Type: "exitcode-stdio-1.0", MainIs: "Spec.hs", SourceDirs: []string{"test"},
				Modules: []string{"Paths_generated"}, BuildDepends: []string{"base", "generated"}}},
			SourceFiles: []string{"README.md", "CHANGELOG.md", "LICENSE"},
		}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			name := filepath.Join("testdata", tt.file)
			data, err := os.ReadFile(name)
			require.NoError(t, err)
			got, err := parse(name, data, linuxX86)
			require.NoError(t, err)
			tt.want.File = name
			assert.Equal(t, tt.want, got)
		})
		seen[tt.file] = true
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.cabal"))
	require.NoError(t, err)
	for _, f := range files {
		assert.True(t, seen[filepath.Base(f)], "testdata file %s has no expectation", f)
	}
}

// TestPlatform checks that arch() follows the platform, by its cabal name
// and its aliases.
func TestPlatform(t *testing.T) {
	assert.Equal(t, "x86_64", cabalsyntax.CabalArch("amd64"))
	assert.Equal(t, "aarch64", cabalsyntax.CabalArch("arm64"))
	assert.Equal(t, "riscv64", cabalsyntax.CabalArch("riscv64"))

	data, err := os.ReadFile(filepath.Join("testdata", "braces.cabal"))
	require.NoError(t, err)
	got, err := parse("braces.cabal", data, cabalsyntax.Platform{OS: "linux", Arch: "aarch64", GHC: "9.6.7"})
	require.NoError(t, err)
	assert.Equal(t, []string{"other-arch"}, got.Executables[1].BuildDepends)

	src := "name: p\nversion: 1\nlibrary\n  if arch(arm64) && arch(AArch64) && !arch(amd64)\n    build-depends: arm\n"
	got, err = parse("p.cabal", []byte(src), cabalsyntax.Platform{OS: "linux", Arch: "aarch64", GHC: "9.6.7"})
	require.NoError(t, err)
	assert.Equal(t, []string{"arm"}, got.Library.BuildDepends)
}

func TestParseErrors(t *testing.T) {
	const head = "cabal-version: 2.4\nname: p\nversion: 1\n"
	tests := []struct {
		name string
		src  string
		line int
		msg  string
	}{
		{"missing name", "cabal-version: 2.4\nversion: 1\nlibrary\n  exposed-modules: A\n", 1, "missing name field"},
		{"missing version", "name: p\n\nlibrary\n", 1, "missing version field"},
		{"empty file", "", 1, "missing name field"},
		{"invalid name", "name: my package\nversion: 1\n", 1, `invalid package name "my package"`},
		{"invalid version", "name: p\nversion: 1.0-beta\n", 2, `invalid version "1.0-beta"`},
		{"unterminated brace", head + "library {\n  exposed-modules: A\n  build-depends: base\n", 4, "unterminated '{'"},
		{"unterminated nested brace", head + "library {\n  if flag(x) {\n    build-depends: a\n}\nflag x\n", 4, "unterminated '{'"},
		{"close brace without open", head + "library\n  exposed-modules: A\n}\n", 6, "unexpected '}'"},
		{"unknown common stanza", head + "common a\n  ghc-options: -Wall\nlibrary\n  import: a, b\n", 7, "unknown common stanza b"},
		{"common stanza defined later", head + "library\n  import: later\ncommon later\n  ghc-options: -Wall\n", 5, "before its definition"},
		{"unknown stanza in common", head + "common a\n  import: nope\n", 5, "unknown common stanza nope"},
		{"component field outside a section", head + "main-is: Main.hs\nlibrary\n", 4, "field main-is is not a package field"},
		{"flat pre-1.2 format", head + "build-depends: base\nexposed-modules: A\n", 4, "build-depends: this is the flat .cabal format of before cabal-version 1.2"},
		{"flat pre-1.2 executable", head + "executable: x\nmain-is: Main.hs\n", 4, "executable: this is the flat .cabal format"},
		{"executable named ..", head + "executable ..\n  main-is: M.hs\n", 4, `executable section: invalid name ".."`},
		{"executable named a/b", head + "executable a/b\n  main-is: M.hs\n", 4, `executable section: invalid name "a/b"`},
		{"field after an empty section", head + "library\nexposed-modules: A\n", 5, "field exposed-modules is not a package field"},
		{"tabs and spaces mixed", head + "library\n  exposed-modules: A\n\tbuild-depends: base\n", 6, "ambiguous indentation"},
		{"if indented as continuation", head + "library\n  hs-source-dirs: src\n   if false\n    build-depends: a\n", 6, "ambiguous indentation: if"},
		{"field indented as continuation", head + "executable e\n  build-depends: base\n    main-is: Main.hs\n", 6, "ambiguous indentation: main-is"},
		{"unclosed paren in condition", head + "library\n  if flag(x\n    build-depends: a\nflag x\n", 5, "missing ')'"},
		{"condition ends early", head + "library\n  if os(linux) &&\n    build-depends: a\n", 5, "ends too early"},
		{"unknown word in condition", head + "library\n  if linux\n    build-depends: a\n", 5, `unknown "linux"`},
		{"unknown function in condition", head + "library\n  if compiler(ghc)\n    build-depends: a\n", 5, "unknown function compiler"},
		{"trailing garbage in condition", head + "library\n  if true false\n    build-depends: a\n", 5, "unexpected"},
		{"undefined flag", head + "library\n  if flag(nope)\n    build-depends: a\n", 5, `undefined flag "nope"`},
		{"empty if", head + "library\n  if\n    build-depends: a\n", 5, "missing condition"},
		{"else without if", head + "library\n  exposed-modules: A\n  else\n    build-depends: a\n", 6, "else without an if"},
		{"conditional at top level", head + "if os(linux)\n  build-depends: a\n", 4, "outside any section"},
		{"unknown section", head + "libary\n  exposed-modules: A\n", 4, `unknown section "libary "`},
		{"missing colon in a component", head + "library\n  exposed-modules A\n", 5, `unknown section "exposed-modules A"`},
		{"binary garbage", "\x00\x01\x02garbage", 1, "unexpected character"},
		{"punctuation", head + "!!!\n", 4, "unexpected character '!'"},
		{"bad flag default", head + "flag x\n  default: maybe\n", 5, "want True or False"},
		{"dependency without comma", head + "library\n  build-depends: base\n    text\n", 5, `invalid dependency "base text"`},
		{"bad dependency on a later line", head + "library\n  build-depends:\n    base,\n    text >= 1 # x\n", 7, "invalid dependency"},
		{"bad module name", head + "library\n  exposed-modules: foo\n", 5, `invalid module name "foo"`},
		{"two main-is values", head + "executable e\n  main-is: A.hs B.hs\n", 5, "want one value"},
		{"unterminated string", head + "data-files: \"a b\n", 4, "unterminated string"},
		{"executable without a name", head + "executable\n  main-is: M.hs\n", 4, "executable section needs a name"},
		{"duplicate executable", head + "executable e\n  main-is: M.hs\nexecutable e\n  main-is: N.hs\n", 6, "executable e is defined twice"},
		{"duplicate library", head + "library\nlibrary\n", 5, "second library section"},
		{"duplicate flag", head + "flag x\nflag X\n", 5, "flag x is declared twice"},
		{"mid-line section without braces", head + "library { if flag(x)\n  build-depends: a\n}\nflag x\n", 4, "must be in { }"},
		{"braced value unterminated", head + "library\n  exposed-modules: {\n    A\n", 5, "unterminated '{' in the value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse("p.cabal", []byte(tt.src), linuxX86)
			require.Error(t, err)
			var pe *ParseError
			require.True(t, errors.As(err, &pe), "want *ParseError, got %T: %v", err, err)
			assert.Equal(t, "p.cabal", pe.File)
			assert.Equal(t, tt.line, pe.Line, "error: %v", err)
			assert.Contains(t, pe.Msg, tt.msg)
			assert.Regexp(t, `^p\.cabal:\d+: `, err.Error())
		})
	}
}

// TestImportExplosion checks that stanzas importing each other twice over
// give an error, not an exponential expansion.
func TestImportExplosion(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: p\nversion: 1\ncommon a0\n  ghc-options: -Wall\n")
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&b, "common a%d\n  import: a%d, a%d\n", i, i-1, i-1)
	}
	b.WriteString("library\n  import: a39\n")
	_, err := parse("p.cabal", []byte(b.String()), linuxX86)
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, pe.Msg, "imports expand to more than")
}

// TestBraceSemicolons checks the one-line brace form the docs promise.
func TestBraceSemicolons(t *testing.T) {
	src := "name: p\nversion: 1\nlibrary { exposed-modules: A; build-depends: base }\n" +
		"executable e { main-is: M.hs; if flag(x) { build-depends: a; } else { build-depends: b } }\n" +
		"flag x { default: false }\n"
	got, err := parse("p.cabal", []byte(src), linuxX86)
	require.NoError(t, err)
	assert.Equal(t, &deploy.Component{Name: "p", SourceDirs: []string{"."}, Modules: []string{"A"}, BuildDepends: []string{"base"}}, got.Library)
	assert.Equal(t, []deploy.Component{{Name: "e", MainIs: "M.hs", SourceDirs: []string{"."}, BuildDepends: []string{"b"}}}, got.Executables)
}

// TestBracedValues checks "field: { ... }" values, and values that merely
// start with a brace.
func TestBracedValues(t *testing.T) {
	src := "name: p\nversion: 1\ndescription: {-# LANGUAGE Foo #-} is\n  a pragma.\n" +
		"library\n  exposed-modules: {\n A\n      B }\n  build-depends: { base }\n" +
		"executable e { main-is: { M.hs }; build-depends: { base }; }\n"
	got, err := parse("p.cabal", []byte(src), linuxX86)
	require.NoError(t, err)
	assert.Equal(t, &deploy.Component{Name: "p", SourceDirs: []string{"."}, Modules: []string{"A", "B"}, BuildDepends: []string{"base"}}, got.Library)
	assert.Equal(t, []deploy.Component{{Name: "e", MainIs: "M.hs", SourceDirs: []string{"."}, BuildDepends: []string{"base"}}}, got.Executables)
}

func TestReadHello(t *testing.T) {
	want := deploy.TargetDesc{
		Package: "hello", Version: "0.1.0.0",
		Library: &deploy.Component{Name: "hello", SourceDirs: []string{"src"}, Modules: []string{"Hello"},
			BuildDepends: []string{"base", "wai", "http-types", "bytestring"}},
		Executables: []deploy.Component{{Name: "hello", MainIs: "Main.hs", SourceDirs: []string{"app"},
			BuildDepends: []string{"base", "hello", "warp", "unix"}}},
		TestSuites: []deploy.Component{{Name: "spec", Type: "exitcode-stdio-1.0", MainIs: "Spec.hs", SourceDirs: []string{"test"},
			BuildDepends: []string{"base", "hello", "wai", "http-types", "bytestring"}}},
	}
	dir := filepath.Join("..", "..", "..", "examples", "hello")
	for _, path := range []string{filepath.Join(dir, "hello.cabal"), dir} {
		got, err := New().Read(context.Background(), path)
		require.NoError(t, err)
		want.File = filepath.Join(dir, "hello.cabal")
		assert.Equal(t, want, got)
	}
}

func TestReadErrors(t *testing.T) {
	ctx := context.Background()

	two := t.TempDir()
	for _, f := range []string{"b.cabal", "a.cabal"} {
		require.NoError(t, os.WriteFile(filepath.Join(two, f), []byte("name: p\nversion: 1\n"), 0o644))
	}
	_, err := New().Read(ctx, two)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "2 *.cabal files in "+two+" (a.cabal, b.cabal)")

	none := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(none, "dir.cabal"), 0o755))
	_, err = New().Read(ctx, none)
	assert.ErrorContains(t, err, "no *.cabal file in "+none)

	_, err = New().Read(ctx, filepath.Join(none, "missing.cabal"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	bad := filepath.Join(t.TempDir(), "bad.cabal")
	require.NoError(t, os.WriteFile(bad, []byte("name: p\nversion: 1\nlibrary {\n"), 0o644))
	_, err = New().Read(ctx, bad)
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, bad+":3: unterminated '{': no matching '}' before the end of the file", err.Error())

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = New().Read(canceled, bad)
	assert.ErrorIs(t, err, context.Canceled)
}
