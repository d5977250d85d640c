// Package embedded is the default Store: the cluster state as one JSON
// document with its revision in a bbolt file (.dflow/store.db).
//
// Several processes use the file at once (the CLI reads while the control
// plane's worker writes) and bbolt holds an exclusive flock while a database
// is open, so the file is opened for each operation, one transaction long,
// and closed again. Compare-and-swap is a check inside that transaction.
package embedded
