// Package artifactstest is the conformance suite of artifacts.Store: Run
// checks every method's contract (artifacts.go) against a store made fresh
// for each case. Every implementation runs it against its real dependency
// (a directory, a real registry, a real plugin process).
package artifactstest
