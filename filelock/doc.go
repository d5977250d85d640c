// Package filelock is dflow's one way of saying "this process owns that":
// an exclusive flock(2) on a file, held for as long as the owner lives. The
// kernel drops it when the owner dies (even by SIGKILL), so Held doubles as
// "is the owner alive", and a zombie owner is seen as gone. It also has Tail,
// for quoting the last lines of a log in an error.
package filelock
