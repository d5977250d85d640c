// Package cabal is the Builder that builds a Haskell package with cabal-install
// (cabal v2 "new-style" builds) and bundles what it built into a reproducible
// tar.zst for dflow to ship.
//
// A build runs, in the package directory and with the caller's environment
// plus BuildOptions.Env:
//
//  1. cabal build --enable-tests --test-show-details=direct .
//  2. cabal test  --enable-tests --test-show-details=direct .  (skipped when the
//     package has no test suite; a failing suite fails the build)
//  3. per requested kind: cabal list-bin PKG:exe:NAME (executables, bundled as
//     bin/NAME, mode 0755, as built: not stripped, so the checksum a node
//     compares is the one that was built); cabal sdist (the library, bundled as
//     lib/PKG-VER.tar.gz); git archive of the committed tree, or of a
//     `git stash create` commit when the tree is dirty (the source, bundled as
//     src/PKG-VER.tar)
//  4. artifact.WriteBundleFile into WorkDir/bundle-VERSION.tar.zst.
//
// The target "." names the package in the directory, so a package inside a
// multi-package cabal.project builds alone. The same flags go to every cabal
// command: cabal 3.4 keeps --test-show-details in the configuration, and
// mixing flags makes build and test reconfigure each other in turn.
//
// Builds use cabal's own dist-newstyle in the project, as a Haskell developer
// expects, and never run `cabal update`: dependencies come from what is
// installed (the global package database, the cabal store). To build offline,
// point CABAL_DIR (BuildOptions.Env) at a directory whose config file exists
// and has no repository stanza: with no config file at all, cabal 3.4 writes a
// default one naming hackage.haskell.org and fails trying to reach it.
//
// Reproducibility: with GHC 9.0.2 and cabal 3.4.1, the same commit gives the
// same executable bytes, also after removing dist-newstyle and in another
// directory; cabal sdist writes fixed mtimes and owners; git archive of a
// commit uses the commit's time. So the same commit gives the same Digest.
// A dirty tree's source archive comes from a `git stash create` commit made
// with fixed author, committer and dates (HEAD's), so the same dirty tree also
// gives the same digest. Untracked files are not in the source archive (git
// stash create records tracked files only), though they do make the Version
// dirty.
//
// Version is the git commit of the package directory's repository, with
// "-dirty" appended when the directory has uncommitted changes. Checking the
// inputs, running tools, versioning, source archives and bundling are
// backends/internal/build's, shared with the stack builder.
package cabal
