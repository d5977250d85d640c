package testsuite

// The small package files ReaderSuite reads, one construct each. Their
// expectations are written for GHC ReaderGHC on linux.

var cabalCases = []readerCase{
	{name: "executables, library and a test suite", file: "app.cabal", files: map[string]string{"app.cabal": `cabal-version: 2.4
name:          app
version:       1.2.3
library
  exposed-modules: App
  hs-source-dirs:  src
  build-depends:   base >=4 && <5, text
executable app-server
  main-is:       Server.hs
  build-depends: base, app
executable app-cli
  main-is:       Cli.hs
  build-depends: base, app
test-suite spec
  type:          exitcode-stdio-1.0
  main-is:       Spec.hs
  build-depends: base, app, hspec
`}, want: readerWant{pkg: "app", version: "1.2.3", lib: true, exes: l("app-server", "app-cli"), tests: l("spec"),
		deps:  map[string][]string{"": l("base", "text"), "spec": l("base", "app", "hspec")},
		mains: map[string]string{"app-server": "Server.hs", "spec": "Spec.hs"}}},
	{name: "a library alone", file: "lib.cabal", files: map[string]string{"lib.cabal": `cabal-version: 3.0
name: lib
version: 0.1
library
  exposed-modules: Lib
  build-depends: base
benchmark speed
  type: exitcode-stdio-1.0
  main-is: B.hs
`}, want: readerWant{pkg: "lib", lib: true}},
	{name: "test suites of each type and one whose type cabal infers", file: "t.cabal", files: map[string]string{"t.cabal": `cabal-version: 3.8
name: t
version: 1
test-suite stdio
  type: exitcode-stdio-1.0
  main-is: Stdio.hs
test-suite detailed
  type: detailed-0.9
  test-module: Detailed
test-suite inferred
  main-is: Inferred.hs
`}, want: readerWant{pkg: "t", tests: l("stdio", "detailed", "inferred"), mains: map[string]string{"inferred": "Inferred.hs"}}},
	{name: "conditionals: flags at their defaults, os, arch, elif, else, buildable", file: "c.cabal", files: map[string]string{"c.cabal": `cabal-version: 2.4
name: c
version: 1
flag fast
  default: False
flag tls
  description: TLS
executable c
  main-is: C.hs
  build-depends: base
  if flag(fast)
    build-depends: fast
  elif flag(tls)
    build-depends: tls
  else
    build-depends: slow
  if os(windows)
    build-depends: Win32
  else
    build-depends: unix
  if arch(x86_64) || arch(aarch64)
    build-depends: simd
executable c-windows
  main-is: W.hs
  if !os(windows)
    buildable: False
`}, want: readerWant{pkg: "c", exes: l("c"), deps: map[string][]string{"c": l("base", "tls", "unix", "simd")}}},
	{name: "common stanzas, nested and in conditionals", file: "common.cabal", files: map[string]string{"common.cabal": `cabal-version: 3.0
name: common
version: 1
common base
  build-depends: base
common warnings
  import: base
  ghc-options: -Wall
common unix
  build-depends: unix
library
  import: warnings
  exposed-modules: Common
executable common
  import: base
  main-is: Main.hs
  if os(linux)
    import: unix
  build-depends: common
`}, want: readerWant{pkg: "common", lib: true, exes: l("common"),
		deps: map[string][]string{"": l("base"), "common": l("base", "common", "unix")}}},
	{name: "impl(ghc RANGE) for the GHC that builds", file: "hls.cabal", files: map[string]string{"hls.cabal": `cabal-version: 3.4
name: hls
version: 2
flag tutorial
  default: True
executable hls
  main-is: Main.hs
  if impl(ghc >= 9.0) && impl(ghc < 9.2)
    build-depends: ghc90-only
  if impl(ghc ==9.10.*) || impl(ghc >= 9.14)
    build-depends: too-new
executable tutorial
  main-is: T.hs
  if !flag(tutorial) || !(impl(ghc >= 9.6) && impl(ghc < 9.10))
    buildable: False
test-suite hlint-tests
  type: exitcode-stdio-1.0
  main-is: H.hs
  if impl(ghc > 9.11)
    buildable: False
test-suite old-ghc-only
  type: exitcode-stdio-1.0
  main-is: O.hs
  if !impl(ghc ^>=9.0)
    buildable: False
`}, want: readerWant{pkg: "hls", exes: l("hls"), tests: l("hlint-tests", "old-ghc-only"),
		deps: map[string][]string{"hls": l("ghc90-only")}}},
	{name: "an executable named as cabal allows, not as a package", file: "cachix.cabal", files: map[string]string{"cachix.cabal": `cabal-version: 2.2
name: cachix
version: 1.0
executable .cachix-deployment
  main-is: Main.hs
`}, want: readerWant{pkg: "cachix", exes: l(".cachix-deployment")}},
	{name: "braces", file: "b.cabal", files: map[string]string{"b.cabal": "name: b\nversion: 1\nexecutable b {\n  main-is: B.hs; build-depends: base\n}\n"},
		want: readerWant{pkg: "b", exes: l("b"), deps: map[string][]string{"b": l("base")}}},
	{name: "the flat pre-1.2 format is refused by name", file: "old.cabal", files: map[string]string{"old.cabal": `name: old
version: 0.1
build-depends: base
exposed-modules: Old
`}, err: "this is the flat .cabal format of before cabal-version 1.2"},
	{name: "an executable without a name", file: "bad.cabal", files: map[string]string{"bad.cabal": "cabal-version: 2.4\nname: bad\nversion: 1\nexecutable\n  main-is: M.hs\n"},
		err: ":4: executable section needs a name"},
	{name: "an undefined flag", file: "bad.cabal", files: map[string]string{"bad.cabal": "cabal-version: 2.4\nname: bad\nversion: 1\nexecutable bad\n  main-is: M.hs\n  if flag(nope)\n    buildable: False\n"},
		err: `:6: if: undefined flag "nope"`},
	{name: "an impl range that does not parse", file: "bad.cabal", files: map[string]string{"bad.cabal": "cabal-version: 2.4\nname: bad\nversion: 1\nexecutable bad\n  main-is: M.hs\n  if impl(ghc >= nine)\n    buildable: False\n"},
		err: ":6: if: impl(ghc >= nine)"},
}

var hpackCases = []readerCase{
	{name: "executables, library and tests", file: "package.yaml", files: map[string]string{"package.yaml": `name: app
version: 1.2.3
dependencies: [base]
library:
  source-dirs: src
  exposed-modules: [App]
  dependencies: [text]
executables:
  app-server:
    main: Server.hs
    dependencies: [app]
  app-cli:
    main: Cli.Main
tests:
  spec:
    main: Spec.hs
    dependencies: [app, hspec]
`}, want: readerWant{pkg: "app", version: "1.2.3", lib: true, exes: l("app-server", "app-cli"), tests: l("spec"),
		deps:  map[string][]string{"": l("base", "text"), "spec": l("base", "app", "hspec")},
		mains: map[string]string{"app-server": "Server.hs", "app-cli": "Cli/Main.hs"}}},
	{name: "a library alone", file: "package.yaml", files: map[string]string{"package.yaml": "name: lib\nlibrary:\n  exposed-modules: Lib\n"},
		want: readerWant{pkg: "lib", version: "0.0.0", lib: true}},
	{name: "one executable named after the package", file: "package.yaml", files: map[string]string{"package.yaml": "name: one\nversion: 1\nexecutable:\n  main: Main.hs\n"},
		want: readerWant{pkg: "one", exes: l("one")}},
	{name: "conditionals: flags, then and else, buildable", file: "package.yaml", files: map[string]string{"package.yaml": `name: c
version: 1
flags:
  fast: {default: false, manual: true}
executables:
  c:
    main: C.hs
    when:
      - condition: flag(fast)
        then: {dependencies: fast}
        else: {dependencies: slow}
      - condition: os(windows)
        dependencies: Win32
      - condition: arch(x86_64) || arch(aarch64)
        dependencies: simd
  c-windows:
    main: W.hs
    when:
      condition: "!os(windows)"
      buildable: false
`}, want: readerWant{pkg: "c", exes: l("c"), deps: map[string][]string{"c": l("slow", "simd")}}},
	{name: "anchors and merge keys", file: "package.yaml", files: map[string]string{"package.yaml": `name: a
version: 1
_exe: &exe
  main: Main.hs
  dependencies: [base, a]
executables:
  one:
    <<: *exe
    source-dirs: one
  two:
    <<: *exe
    main: Two.hs
`}, want: readerWant{pkg: "a", exes: l("one", "two"), mains: map[string]string{"one": "Main.hs", "two": "Two.hs"},
		deps: map[string][]string{"two": l("base", "a")}}},
	{name: "impl(ghc RANGE) for the GHC that builds", file: "package.yaml", files: map[string]string{"package.yaml": `name: i
version: 1
executables:
  i:
    main: Main.hs
    when:
      - condition: impl(ghc >= 9.0) && impl(ghc < 9.2)
        dependencies: ghc90-only
      - condition: impl(ghc >= 9.6)
        dependencies: ghc96-only
tests:
  new-ghc-only:
    main: T.hs
    when:
      condition: impl(ghc < 9.6)
      buildable: false
`}, want: readerWant{pkg: "i", exes: l("i"), deps: map[string][]string{"i": l("ghc90-only")}}},
	{name: "!include: a merged mapping and an alias of its anchor", file: "package.yaml", files: map[string]string{
		"package.yaml": `<<: !include version.yaml
name: inc
_deps: !include "deps.yaml"
executables:
  inc:
    main: Main.hs
    dependencies: [base, "meta == 1"]
tests:
  spec:
    main: Spec.hs
    dependencies:
      inc-meta: *version # the anchor is in version.yaml
`,
		"version.yaml": "version: &version 2.11.12\n",
		"deps.yaml":    "- base\n- text\n",
	}, want: readerWant{pkg: "inc", version: "2.11.12", exes: l("inc"), tests: l("spec"),
		deps: map[string][]string{"inc": l("base", "meta"), "spec": l("inc-meta")}}},
	{name: "defaults: a local file, also above the package", file: "package.yaml", files: map[string]string{
		"package.yaml": `defaults:
  local: ../../package-defaults.yaml
name: proxy
version: '0.9.0'
dependencies: [imports]
executables:
  proxy:
    main: Main.hs
    defaults: {local: exe-defaults.yaml}
`,
		"../../package-defaults.yaml": "dependencies: [base]\nsource-dirs: src\nversion: '9.9'\n",
		"exe-defaults.yaml":           "main: Other.hs\ndependencies: [warp]\n",
	}, want: readerWant{pkg: "proxy", version: "0.9.0", exes: l("proxy"),
		deps: map[string][]string{"proxy": l("base", "imports", "warp")}, mains: map[string]string{"proxy": "Main.hs"}}},
	{name: "defaults from GitHub are not downloaded", file: "package.yaml", files: map[string]string{"package.yaml": "name: g\ndefaults: sol/ghc2021@v0.1.0\nlibrary: {}\n"},
		err: ":2: defaults: sol/ghc2021@v0.1.0 is on GitHub, and dflow does not download"},
	{name: "a missing !include file", file: "package.yaml", files: map[string]string{"package.yaml": "name: m\n\n_: !include nope.yaml\n"},
		err: ":3: !include nope.yaml:"},
	{name: "an undefined flag", file: "package.yaml", files: map[string]string{"package.yaml": "name: bad\nexecutable:\n  main: M.hs\n  when:\n    condition: flag(nope)\n    buildable: false\n"},
		err: `:5: condition: undefined flag "nope"`},
}
