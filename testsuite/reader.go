package testsuite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/stretchr/testify/require"
)

// ReaderFormat says which package files a PackageReader reads.
type ReaderFormat string

// The formats ReaderSuite knows.
const (
	CabalFiles ReaderFormat = "cabal" // *.cabal
	HpackFiles ReaderFormat = "hpack" // package.yaml
)

// ReaderGHC is the GHC version ReaderSuite's expectations are written for:
// a reader under the suite evaluates impl(ghc RANGE) for it. It is the GHC
// of Debian bookworm, the one this project builds with.
const ReaderGHC = "9.0.2"

// ReaderSuite is the conformance suite every PackageReader passes. r must
// evaluate impl(ghc ...) for ReaderGHC, and (for HpackFiles) find no
// defaults in hpack's cache. It reads:
//
//   - small package files written for each construct (executables, the
//     library, test suites, conditionals, common stanzas or anchors,
//     impl(ghc ...), !include and defaults, the flat pre-1.2 format, bad
//     input), checked in detail;
//   - the real-world corpus in ../shared/realcabal/corpus beside the
//     repository, read in place: each file's package name, library,
//     executables and test suites must be what cabal (or hpack then cabal)
//     says, except for the files dflow refuses on purpose, whose error is
//     checked. Without the corpus that part is skipped, loudly.
func ReaderSuite(t *testing.T, r backends.PackageReader, f ReaderFormat) {
	ctx := context.Background()
	t.Run("constructs", func(t *testing.T) {
		cases := cabalCases
		if f == HpackFiles {
			cases = hpackCases
		}
		require.NotEmpty(t, cases, "unknown format %q", f)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				dir := t.TempDir()
				base := filepath.Join(dir, "src", "pkg")
				for name, text := range c.files {
					p := filepath.Join(base, filepath.FromSlash(name))
					require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
					require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
				}
				file := filepath.Join(base, c.file)
				d, err := r.Read(ctx, file)
				if c.err != "" {
					require.Error(t, err)
					require.Contains(t, err.Error(), c.err)
					require.Contains(t, err.Error(), file+":", "errors name the file and line")
					return
				}
				require.NoError(t, err)
				require.Equal(t, file, d.File)
				c.want.check(t, d, false)
			})
		}
	})
	t.Run("a directory holding one package file", func(t *testing.T) {
		dir := t.TempDir()
		name, text := "p.cabal", "cabal-version: 2.4\nname: p\nversion: 1\nexecutable p\n  main-is: Main.hs\n"
		if f == HpackFiles {
			name, text = "package.yaml", "name: p\nversion: '1'\nexecutables:\n  p:\n    main: Main.hs\n"
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
		d, err := r.Read(ctx, dir)
		require.NoError(t, err)
		require.Equal(t, filepath.Join(dir, name), d.File)
		require.Equal(t, "p", d.Package)
		require.Equal(t, []string{"p"}, names(d.Executables))
	})
	t.Run("a missing file is an error", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope.cabal")
		if f == HpackFiles {
			missing = filepath.Join(t.TempDir(), "nope", "package.yaml")
		}
		_, err := r.Read(ctx, missing)
		require.Error(t, err)
		require.True(t, errors.Is(err, os.ErrNotExist), "%v", err)
	})
	t.Run("a cancelled context is an error", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := r.Read(cctx, t.TempDir())
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("corpus", func(t *testing.T) { readCorpus(t, r, f) })
}

// readerCase is one small package file (with the files it names) and what
// reading it gives.
type readerCase struct {
	name  string
	file  string            // the package file, a key of files
	files map[string]string // relative to the package's directory
	want  readerWant
	err   string // the error, when reading must fail
}

// readerWant is what a reader must return for a package file.
type readerWant struct {
	pkg, version string
	lib          bool
	exes, tests  []string            // names, in the file's order
	deps         map[string][]string // component ("" = library) -> build-depends, where checked
	mains        map[string]string   // executable or test suite -> main-is, where checked
}

func (w readerWant) check(t *testing.T, d deploy.TargetDesc, sorted bool) {
	t.Helper()
	require.Equal(t, w.pkg, d.Package, "package name")
	if w.version != "" {
		require.Equal(t, w.version, d.Version, "version")
	}
	require.Equal(t, w.lib, d.Library != nil, "library")
	exes, tests := names(d.Executables), names(d.TestSuites)
	if sorted {
		sort.Strings(exes)
		sort.Strings(tests)
	}
	require.Equal(t, w.exes, exes, "executables")
	require.Equal(t, w.tests, tests, "test suites")
	comps := map[string]deploy.Component{}
	for _, c := range append(append([]deploy.Component(nil), d.Executables...), d.TestSuites...) {
		comps[c.Name] = c
	}
	if d.Library != nil {
		comps[""] = *d.Library
	}
	for name, deps := range w.deps {
		require.Equal(t, deps, comps[name].BuildDepends, "build-depends of %q", name)
	}
	for name, main := range w.mains {
		require.Equal(t, main, comps[name].MainIs, "main-is of %s", name)
	}
}

func names(cs []deploy.Component) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func l(s ...string) []string { return s }

// RepoRoot is the absolute path of this repository's root directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testsuite: cannot locate the repository")
	}
	return filepath.Dir(filepath.Dir(file))
}

// CorpusDir is where the real-world package files are: shared/realcabal/corpus
// beside the repository. It is read in place, never copied into the project.
func CorpusDir(t testing.TB) string {
	return filepath.Join(RepoRoot(t), "..", "shared", "realcabal", "corpus")
}

// readCorpus reads every corpus file of format f and compares it with what
// cabal says.
func readCorpus(t *testing.T, r backends.PackageReader, f ReaderFormat) {
	dir := CorpusDir(t)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("SKIPPED: the real-world corpus is not at %s (%v), so the reader is not checked against 69 real package files; it comes with the project's shared/ directory", dir, err)
	}
	ctx := context.Background()
	suffix := ".cabal"
	if f == HpackFiles {
		suffix = ".package.yaml"
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	expected := map[string]corpusEntry{}
	for _, e := range corpus {
		expected[e.file] = e
	}
	var files []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), suffix) {
			files = append(files, e.Name())
			require.Contains(t, expected, e.Name(), "corpus file %s has no expectation in testsuite/reader.go", e.Name())
		}
	}
	require.NotEmpty(t, files)
	agree := 0
	for _, name := range files {
		e := expected[name]
		ok := t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if len(e.beside) > 0 {
				// The files it names are in its repository, not in the
				// corpus: read it through a link, with them beside it.
				base := filepath.Join(t.TempDir(), "repo", "pkgs", "pkg")
				require.NoError(t, os.MkdirAll(base, 0o755))
				for rel, text := range e.beside {
					p := filepath.Join(base, filepath.FromSlash(rel))
					require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
					require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
				}
				link := filepath.Join(base, name)
				require.NoError(t, os.Symlink(path, link))
				path = link
			}
			d, err := r.Read(ctx, path)
			if e.refused != "" {
				require.Error(t, err, "dflow refuses this file on purpose: %s", e.why)
				require.Contains(t, err.Error(), e.refused)
				return
			}
			require.NoError(t, err)
			readerWant{pkg: e.pkg, lib: e.lib, exes: e.exes, tests: e.tests}.check(t, d, true)
		})
		if ok && e.refused == "" {
			agree++
		}
	}
	t.Logf("corpus: %d of %d %s files read as cabal reads them; the rest are refused on purpose (see the table)", agree, len(files), suffix)
}

// corpusEntry is what cabal says of one corpus file: Cabal 3.4.1's
// finalizePD for linux x86_64, GHC ReaderGHC and every flag at its default
// (hpack 0.34.7 first, for package.yaml; for cabal-version 3.6 and 3.8 files
// and spec-version 0.35 and later, which those tools predate, the file
// was read by hand), names sorted. Every value was checked against the file.
type corpusEntry struct {
	file        string
	pkg         string
	lib         bool
	exes, tests []string
	// beside are files the package's repository has beside it and the
	// corpus lacks (what its !include or defaults name), relative to its
	// directory, as the suite writes them.
	beside map[string]string
	// refused is set for a file dflow refuses on purpose: the error it
	// gives; why says what cabal does instead.
	refused, why string
}

// hspecVersion is hspec's version.yaml, which its package.yaml files
// include.
const hspecVersion = "version: &version 2.11.12\n"

var corpus = []corpusEntry{
	{file: "PostgREST__postgrest__postgrest.cabal", pkg: "postgrest", lib: true, exes: l("postgrest"), tests: l("doctests", "observability", "spec")},
	{file: "agda__agda__Agda.cabal", pkg: "Agda", lib: true, exes: l("agda", "agda-mode", "agda-tests"), tests: nil},
	{file: "agda__agda__agda1to2-2014.cabal", pkg: "Agda1to2", lib: false, exes: l("agda1to2"), tests: nil},
	{file: "cachix__cachix__cachix-2021.package.yaml", pkg: "cachix", lib: true, exes: l("cachix"), tests: l("cachix-test")},
	{file: "cachix__cachix__cachix.cabal", pkg: "cachix", lib: true, exes: l(".cachix-deployment", "cachix"), tests: l("cachix-test")},
	{file: "commercialhaskell__stack__stack.cabal", pkg: "stack", lib: true, exes: l("stack"), tests: l("stack-unit-test")},
	{file: "commercialhaskell__stack__stack.package.yaml", pkg: "stack", lib: true, exes: l("stack"), tests: l("stack-unit-test")},
	{file: "commercialhaskell__stack__test-3591-verbatim.package.yaml", pkg: "myPackage", lib: true, exes: nil, tests: nil},
	{file: "commercialhaskell__stack__test-3787-intlib.package.yaml", pkg: "myPackage", lib: false, exes: l("myExe"), tests: nil},
	{file: "dhall-lang__dhall-haskell__dhall-json.cabal", pkg: "dhall-json", lib: true, exes: l("dhall-to-json", "dhall-to-yaml", "json-to-dhall"), tests: l("tasty")},
	{file: "dhall-lang__dhall-haskell__dhall.cabal", pkg: "dhall", lib: true, exes: l("dhall"), tests: l("doctest", "tasty")},
	{file: "digitallyinduced__ihp__ihp.cabal", pkg: "ihp", lib: true, exes: nil, tests: l("tests")},
	{file: "elm__compiler__elm.cabal", pkg: "elm", lib: false, exes: l("elm"), tests: nil},
	{file: "hadolint__hadolint__hadolint-2024.package.yaml", pkg: "hadolint", lib: true, exes: l("hadolint"), tests: l("hadolint-unit-tests")},
	{file: "hadolint__hadolint__hadolint.cabal", pkg: "hadolint", lib: true, exes: l("hadolint"), tests: l("hadolint-unit-tests")},
	{file: "haskell-servant__servant__basic-auth.cabal", pkg: "cookbook-basic-auth", lib: false, exes: l("cookbook-basic-auth"), tests: nil},
	{file: "haskell__cabal__T7684.cabal", pkg: "T7684", lib: true, exes: nil, tests: nil},
	{file: "haskell__cabal__base-4.0.0.0.cabal", pkg: "base", lib: true, exes: nil, tests: nil},
	{file: "haskell__cabal__cabal-install.cabal", pkg: "cabal-install", lib: true, exes: l("cabal"), tests: l("integration-tests2", "long-tests", "mem-use-tests", "parser-tests", "unit-tests")},
	{file: "haskell__cabal__common-conditional.cabal", pkg: "common-conditional", lib: true, exes: nil, tests: l("tests")},
	{file: "haskell__cabal__common.cabal", pkg: "common", lib: true, exes: nil, tests: l("tests")},
	{file: "haskell__cabal__decreasing-indentation.cabal", pkg: "RSA", lib: true, exes: l("test_rsa", "warnings", "warnings2", "warnings3"), tests: nil, refused: "ambiguous indentation: main-is: is indented more than field ghc-options",
		why: "cabal reads main-is as part of ghc-options (its own test says so) and would then miss main-is; dflow refuses the ambiguity"},
	{file: "haskell__cabal__elif.cabal", pkg: "elif", lib: true, exes: nil, tests: nil},
	{file: "haskell__cabal__jaeger-flamegraph.cabal", pkg: "jaeger-flamegraph", lib: true, exes: l("jaeger-flamegraph"), tests: l("tests")},
	{file: "haskell__cabal__monad-param.cabal", pkg: "monad-param", lib: true, exes: nil, tests: nil, refused: "this is the flat .cabal format of before cabal-version 1.2",
		why: "the flat pre-1.2 format: cabal still reads it, dflow asks for sections"},
	{file: "haskell__cabal__multiple-libs-2.cabal", pkg: "multiple-libs", lib: true, exes: nil, tests: nil},
	{file: "haskell__cabal__my-foreign-lib.cabal", pkg: "my-foreign-lib", lib: true, exes: nil, tests: nil},
	{file: "haskell__cabal__shake.cabal", pkg: "shake", lib: true, exes: l("shake"), tests: l("shake-test")},
	{file: "haskell__cabal__tab.cabal", pkg: "tab", lib: true, exes: nil, tests: l("tests")},
	{file: "haskell__cabal__th-lift-instances.cabal", pkg: "th-lift-instances", lib: true, exes: nil, tests: l("doctests", "tests")},
	{file: "haskell__cabal__variety-p.cabal", pkg: "p", lib: true, exes: l("an-exe"), tests: l("a-testsuite")},
	{file: "haskell__cabal__wl-pprint-indef.cabal", pkg: "wl-pprint-indef", lib: true, exes: l("wl-pprint-string-example"), tests: nil},
	{file: "haskell__ghcup-hs__ghcup.cabal", pkg: "ghcup", lib: true, exes: l("ghcup"), tests: l("ghcup-optparse-test", "ghcup-test")},
	{file: "haskell__haskeline__haskeline.cabal", pkg: "haskeline", lib: true, exes: l("haskeline-examples-Test"), tests: l("haskeline-tests")},
	{file: "haskell__haskell-language-server__haskell-language-server.cabal", pkg: "haskell-language-server", lib: true, exes: l("ghcide-bench", "ghcide-test-preprocessor", "haskell-language-server", "haskell-language-server-wrapper"), tests: l("func-test", "ghcide-bench-test", "ghcide-tests", "hls-alternate-number-format-plugin-tests", "hls-cabal-fmt-plugin-tests", "hls-cabal-gild-plugin-tests", "hls-cabal-plugin-tests", "hls-call-hierarchy-plugin-tests", "hls-change-type-signature-plugin-tests", "hls-class-plugin-tests", "hls-code-range-plugin-tests", "hls-eval-plugin-tests", "hls-explicit-fixity-plugin-tests", "hls-explicit-imports-plugin-tests", "hls-explicit-record-fields-plugin-tests", "hls-export-plugin-tests", "hls-fourmolu-plugin-tests", "hls-gadt-plugin-tests", "hls-hlint-plugin-tests", "hls-notes-plugin-tests", "hls-ormolu-plugin-tests", "hls-overloaded-record-dot-plugin-tests", "hls-pragmas-plugin-tests", "hls-qualify-imported-names-plugin-tests", "hls-refactor-plugin-tests", "hls-rename-plugin-tests", "hls-semantic-tokens-plugin-tests", "hls-signature-help-plugin-tests", "hls-splice-plugin-tests", "hls-stan-plugin-tests", "hls-stylish-haskell-plugin-tests", "wrapper-test")},
	{file: "hspec__hspec__hspec-discover.package.yaml", pkg: "hspec-discover", lib: true, exes: l("hspec-discover"), tests: l("spec"), beside: map[string]string{"version.yaml": hspecVersion},
		why: "<<: !include version.yaml, and an alias (*version) of the included anchor"},
	{file: "hspec__hspec__hspec-meta-2022.package.yaml", pkg: "hspec-meta", lib: true, exes: l("hspec-meta-discover"), tests: nil, beside: map[string]string{"version.yaml": hspecVersion},
		why: "_: !include version.yaml, then version: *version"},
	{file: "hspec__sensei__sensei.package.yaml", pkg: "sensei", lib: true, exes: l("seito", "sensei"), tests: l("spec")},
	{file: "jaspervdj__hakyll__hakyll-4.5-2014.cabal", pkg: "hakyll", lib: true, exes: l("hakyll-init"), tests: l("hakyll-tests")},
	{file: "jaspervdj__hakyll__hakyll.cabal", pkg: "hakyll", lib: true, exes: l("hakyll-init"), tests: l("hakyll-tests")},
	{file: "jaspervdj__patat__patat.cabal", pkg: "patat", lib: true, exes: l("patat"), tests: l("patat-goldplate", "patat-tests")},
	{file: "jgm__gitit__gitit.cabal", pkg: "gitit", lib: true, exes: l("expireGititCache", "gitit"), tests: nil},
	{file: "jgm__pandoc__pandoc-1.4-2010.cabal", pkg: "pandoc", lib: true, exes: l("hsmarkdown", "markdown2pdf", "pandoc"), tests: nil},
	{file: "jgm__pandoc__pandoc-cli.cabal", pkg: "pandoc-cli", lib: false, exes: l("pandoc"), tests: nil},
	{file: "jgm__pandoc__pandoc.cabal", pkg: "pandoc", lib: true, exes: nil, tests: l("test-pandoc")},
	{file: "koalaman__shellcheck__ShellCheck.cabal", pkg: "ShellCheck", lib: true, exes: l("shellcheck"), tests: l("test-shellcheck")},
	{file: "kowainik__summoner__summoner.cabal", pkg: "summoner", lib: true, exes: l("gg", "summon"), tests: l("summoner-test")},
	{file: "ndmitchell__hlint__hlint.cabal", pkg: "hlint", lib: true, exes: l("hlint"), tests: nil},
	{file: "purescript__purescript__purescript-2021.package.yaml", pkg: "purescript", lib: true, exes: l("purs"), tests: l("tests"), beside: map[string]string{"default-extensions.yaml": "- BangPatterns\n- LambdaCase\n"},
		why: "default-extensions: !include ./default-extensions.yaml"},
	{file: "purescript__purescript__purescript.cabal", pkg: "purescript", lib: true, exes: l("purs"), tests: l("tests")},
	{file: "restyled-io__restyler__restyler.package.yaml", pkg: "restyler", lib: true, exes: l("restyle"), tests: l("test")},
	{file: "serokell__xrefcheck__xrefcheck.package.yaml", pkg: "xrefcheck", lib: true, exes: l("xrefcheck"), tests: l("ftp-tests", "xrefcheck-tests")},
	{file: "simonmichael__hledger__hledger-lib.package.yaml", pkg: "hledger-lib", lib: true, exes: nil, tests: l("doctest", "unittest")},
	{file: "simonmichael__hledger__hledger-web.package.yaml", pkg: "hledger-web", lib: true, exes: l("hledger-web"), tests: l("apptest")},
	{file: "simonmichael__hledger__hledger.cabal", pkg: "hledger", lib: true, exes: l("hledger"), tests: l("unittest")},
	{file: "simonmichael__hledger__hledger.package.yaml", pkg: "hledger", lib: true, exes: l("hledger"), tests: l("unittest")},
	{file: "sol__hpack__hpack-2021-defaults.package.yaml", pkg: "hpack", lib: true, exes: l("hpack"), tests: l("spec"),
		refused: "defaults: sol/ghc2021@v0.1.0 is on GitHub, and dflow does not download",
		why:     "defaults from GitHub: hpack downloads them, dflow reads hpack's cache only (the reader under test must have an empty one)"},
	{file: "sol__hpack__hpack.package.yaml", pkg: "hpack", lib: true, exes: l("hpack"), tests: l("spec")},
	{file: "tweag__ormolu__ormolu.cabal", pkg: "ormolu", lib: true, exes: l("ormolu"), tests: l("tests")},
	{file: "unisonweb__unison__unison-cli-main.package.yaml", pkg: "unison-cli-main", lib: false, exes: l("unison"), tests: nil},
	{file: "unisonweb__unison__unison-cli.package.yaml", pkg: "unison-cli", lib: true, exes: l("transcripts"), tests: l("cli-tests")},
	{file: "wireapp__wire-server__proxy.package.yaml", pkg: "proxy", lib: true, exes: l("proxy"), tests: nil, beside: map[string]string{"../../package-defaults.yaml": "ghc-options: [-O2, -Wall]\ndefault-extensions: [OverloadedStrings]\n"},
		why: "defaults: {local: ../../package-defaults.yaml}, above the package (wire-server's monorepo)"},
	{file: "xmonad__xmonad__xmonad-0.0-2007.cabal", pkg: "xmonad", lib: false, exes: l("xmonad"), tests: nil, refused: "this is the flat .cabal format of before cabal-version 1.2",
		why: "the flat pre-1.2 format (executable: xmonad): cabal still reads it, dflow asks for sections"},
	{file: "xmonad__xmonad__xmonad-0.8.1-2009.cabal", pkg: "xmonad", lib: true, exes: l("xmonad"), tests: nil},
	{file: "xmonad__xmonad__xmonad.cabal", pkg: "xmonad", lib: true, exes: l("xmonad"), tests: l("properties")},
	{file: "yesodweb__wai__wai-app-static.cabal", pkg: "wai-app-static", lib: true, exes: l("warp"), tests: l("runtests")},
	{file: "yesodweb__wai__warp.cabal", pkg: "warp", lib: true, exes: nil, tests: l("spec")},
	{file: "yesodweb__yesod-scaffold__scaffold.package.yaml", pkg: "yesod-scaffold", lib: false, exes: l("yesod-scaffold"), tests: nil},
	{file: "yesodweb__yesod__yesod-bin.cabal", pkg: "yesod-bin", lib: false, exes: l("yesod"), tests: nil},
}
