// Package build is what dflow's Haskell builders (backends/builder/cabal and
// backends/builder/stack) share, so that they behave alike without importing
// each other: checking a build's inputs before anything runs (Prepare),
// running a tool in the package directory with its output teed to the log
// and its last lines kept for the error (Runner), versioning a build by its
// git commit with "-dirty" for a changed tree (Version), archiving the
// tracked sources reproducibly (SourceArchive), the bundle's layout (Stage,
// Executable, Library, Source), and hashing and bundling the artifacts into
// the Target's tar.zst (Bundle).
package build
