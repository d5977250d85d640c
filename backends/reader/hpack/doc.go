// Package hpack is the package reader for hpack's package.yaml: it reads the
// file into the deploy.TargetDesc dflow builds and deploys from, as the
// cabal reader does for .cabal files (so the same builders use either).
//
// Read takes a package.yaml or a directory holding one. What is read:
// name (when missing, the directory's name, as hpack does), version
// (default 0.0.0), spec-version, flags (default and manual both required,
// as hpack requires), library, executables (name -> main, source-dirs,
// dependencies, ...), executable (one, named after the package), tests,
// extra-source-files, data-files (under data-dir), extra-doc-files and
// license-file (LICENSE when omitted and present). The top-level
// source-dirs, dependencies, buildable and when are merged into every
// component, top-level first, as hpack does. Dependencies may be one
// string, a list of strings or {name, version} mappings, or a mapping from
// name to a version range, nothing, or a source ({git, ref}, ...); only the
// names are kept, without repeats.
//
// when: takes one conditional or a list; each has a condition and either
// fields of its own or both then: and else:. Conditions are Cabal
// conditions evaluated as the cabal reader evaluates them (both use
// backends/internal/cabalsyntax: flags at their defaults, os(linux), arch()
// of this machine, impl(ghc RANGE) true when the GHC that builds is in
// RANGE; Options.GHC, by default the ghc on PATH) or YAML booleans. A component whose buildable ends up false is left out.
//
// main: is a file (Main.hs) or a module (Foo.Bar, read as main-is
// Foo/Bar.hs). Modules are exposed-modules then other-modules (with the
// generated-* ones). When the file leaves a list out and Read (or ParseFS)
// has the package's directory, the list is inferred from the source
// directories as hpack does: a library without exposed-modules exposes
// every module not in other-modules; otherwise other-modules gets the
// modules not listed (nor the main module). Like hpack before spec-version
// 0.36.0, an inferred other-modules also gets the Paths_PKG module (checked
// against the hpack 0.34.7 built into stack 2.7.5).
//
// YAML anchors, aliases and merge keys (<<: *common) work; top-level fields
// starting with _ (where hpack users keep anchors) and x- are ignored, as
// are fields dflow has no use for (ghc-options, synopsis, ...). Alias
// expansion and nesting are bounded, so hostile input stays cheap.
//
// !include FILE (hpack's YAML include, relative to the including file)
// splices the file in before anchors are resolved, so an alias may name an
// anchor of the included file (hspec's "<<: !include version.yaml" then
// "version: *version"). defaults:, at the top or in a component, one or a
// list, merges a defaults file under the fields that name it: the defaults'
// fields first, the package's own winning where both set a field that is
// not a list (source-dirs, dependencies, when and the module lists add up).
// {local: FILE} is read relative to the file that names it, also above the
// package's directory (monorepos share ../../package-defaults.yaml); a file
// on GitHub (OWNER/REPO@REF, {github, ref, path}) is read from hpack's cache
// (~/.hpack/defaults/OWNER/REPO/REF/PATH, Options.HpackDir) and never
// downloaded: when it is not cached, the error says so and what to do.
//
// Deliberate limits: internal-libraries, benchmarks, custom-setup
// and verbatim are skipped; version ranges are checked for their shape
// only. Errors are *ParseError values, "file:line: message", with the line
// from yaml.v3.
package hpack
