// Package cabalsyntax is the part of Cabal's package-description language
// that dflow's package readers share (backends/reader/cabal reads it in
// .cabal files, backends/reader/hpack in package.yaml), so that neither
// reader imports the other: conditions (if/elif in a .cabal file, when: in
// hpack) evaluated for a Platform, version ranges (their shape, and whether
// a version is in one), build-depends entries, the names of packages,
// components, modules and versions, and list fields without repeats.
//
// A Platform is what a condition is evaluated against: os(linux) on the
// machine's architecture (dflow deploys to linux), and the GHC that builds.
// impl(ghc RANGE) is true exactly when that GHC's version is in RANGE, as
// cabal evaluates it; other compilers are false. HostGHC asks
// `ghc --numeric-version` once per process and falls back to DefaultGHC when
// there is no ghc on PATH.
package cabalsyntax
