// Package stack is the Builder that builds a Haskell package with stack and
// bundles what it built into a tar.zst for dflow to ship, in the same shape
// as the cabal builder (bin/NAME, lib/PKG-VER.tar.gz, src/PKG-VER.tar).
//
// A build runs, in the package directory, with the caller's environment
// plus BuildOptions.Env, every stack command with --system-ghc
// --no-install-ghc --no-terminal (stack never downloads a GHC):
//
//  1. stack build --test PKG (a failing test suite fails the build)
//  2. per requested kind: stack path --local-install-root, whose bin/NAME
//     is each executable; stack sdist --tar-dir (the library); git archive
//     (the source, through build.SourceArchive, as the cabal builder does)
//  3. artifact.WriteBundleFile into WorkDir/bundle-VERSION.tar.zst.
//
// The project: a stack.yaml in the package directory or above it (or
// STACK_YAML in the environment) is the user's, and used as is; a resolver
// that names a snapshot needs that snapshot, so the network, once. Without
// one, the builder writes WorkDir/stack-dflow.yaml: the package alone,
// resolver ghc-VERSION of the ghc on PATH, system-ghc: true. That resolver
// needs no snapshot: dependencies come from GHC's global package database
// (Debian's libghc-*-dev), so the build works offline. Point STACK_ROOT
// (BuildOptions.Env) at a directory of its own to keep ~/.stack out of it.
// Measured here (stack 2.7.5, GHC 9.0.2, 2 cores): examples/hello builds
// and tests offline from a cold .stack-work in about 12 s.
//
// Inputs are checked, the version is the git commit ("-dirty" when the tree
// has changes) and errors end with the tool's last lines, all by
// backends/internal/build, which the cabal builder uses too, so the two
// builders behave alike.
package stack
