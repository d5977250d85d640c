// Package plugin runs backends implemented by external executables: a value
// like `--vm-backend ./my-vm` or `backends.store: /opt/x/store` names an
// executable that speaks dflow's plugin protocol (docs/plugins.md): one
// process per call, `PLUGIN VERB`, one JSON request on stdin, one JSON answer
// on stdout.
//
// Open checks the plugin (its describe answer: protocol version and kinds),
// and VM, Store, Reader, Builder and Container adapt it to the backends
// interfaces. Every way a plugin can misbehave — crash, hang, garbage,
// silence, a flood of output, a missing file — becomes an error that names
// the plugin and the verb; none makes dflow hang or panic. Serve is the
// other side: it turns any backends implementation into a plugin, for
// plugins written in Go.
package plugin
