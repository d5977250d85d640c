// Package scaffold writes a project's first dflow.yaml (`dflow init`): it
// finds the one package file in a directory, reads it with the reader for
// its kind, checks that the package has the targets asked for and, for a
// package with nothing to run, says what to do instead (naming the
// packages below that have executables) and writes nothing.
package scaffold
