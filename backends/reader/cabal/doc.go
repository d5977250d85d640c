// Package cabal is the package reader for Cabal packages: it reads a .cabal
// file into the deploy.TargetDesc that dflow builds and deploys from (package
// name and version, the library, the executables, the test suites, and the
// files a source bundle must carry).
//
// The parser is hand-written and reads what cabal reads, from cabal-version
// 1.x files to 3.x: indentation layout and { } brace layout, common stanzas
// and import: (expanded in order, also inside conditionals and other common
// stanzas), flag stanzas, if/elif/else blocks, multi-line values, comma- or
// space-separated lists with or without leading commas, case-insensitive
// field and section names, CRLF line ends and a byte-order mark.
//
// Conditions are evaluated for the platform dflow deploys to: every flag at
// its default, os(linux), arch() of this machine (amd64 is x86_64, arm64 is
// aarch64), impl(ghc RANGE) true when the GHC that builds is in RANGE
// (Options.GHC, by default the version of the ghc on PATH, asked once; see
// backends/internal/cabalsyntax, which the hpack reader shares), other
// compilers false. As cabal does, a taken branch's fields come after the enclosing
// body's own; a list field adds to the list, a single-valued field
// (main-is) is overridden. A component whose buildable field ends up False
// is left out.
//
// What goes where: a component's Modules are its test-module,
// exposed-modules and other-modules; SourceDirs default to "."; BuildDepends
// are package names only (no version ranges, "pkg:sub" is pkg), without
// repeats. A test suite without a type gets the one cabal 3 infers from
// main-is or test-module. SourceFiles are extra-source-files, data-files
// (under data-dir), extra-doc-files, then license-file(s), as written
// (globs are not expanded).
//
// Indentation is counted as cabal counts it, a tab being one column. A line
// whose nesting would differ with 8-column tabs is rejected as ambiguous, as
// is a line that is indented as the continuation of a field's value but
// reads like a field or an if of its own. Inside braces a ';' also ends a
// field ("library { exposed-modules: A; build-depends: base }"), and "--"
// where a field or section could start begins a comment; elsewhere a "--"
// after text is part of the value, and a comment is a line of its own.
//
// An executable's or test suite's name is taken as cabal takes it, also
// when it is not a package name (".cachix-deployment"), but it must be a
// safe file name: letters, digits, '-', '_', '.' and '\”, not "." or "..".
//
// Deliberate limits: named sub-libraries (library foo), benchmarks, foreign
// libraries, source-repository and custom-setup stanzas are checked for a
// name at most and otherwise skipped; description and the other prose
// fields are not returned; the flat pre-1.2 format (component fields outside
// any section, "executable: NAME") is rejected with an error that names it; version ranges are checked for their shape, not
// evaluated; non-breaking spaces are not taken for indentation. Errors are
// *ParseError values naming the file and line.
package cabal
