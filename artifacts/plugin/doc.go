// Package plugin is the artifact store as an executable of your own: a value
// of `artifacts.store` that is the path of an executable names a plugin that
// speaks dflow's plugin protocol (docs/plugins.md: one process per call,
// `PLUGIN VERB`, one JSON request on stdin, one JSON answer on stdout) with
// the kind "artifacts" and the verbs artifacts.put, artifacts.get,
// artifacts.stat, artifacts.list and artifacts.delete (docs/artifacts.md).
// Bundles do not travel through JSON: dflow hands the plugin the path of a
// file to read (put) or to write (get), and checks the digest on both sides.
//
// Open checks the plugin (describe) and returns a Store; the errors, the
// environment (plugin.Env) and the describe answer are backends/plugin's.
// Serve is the other side, for plugins written in Go.
package plugin
