package agent

import "flag"

// BindFlags defines the agent's command-line flags on fs, into o: the same
// for `dflow agent`, the dflow-agent binary and test binaries that act as
// agents.
func BindFlags(fs *flag.FlagSet, o *Options) {
	fs.StringVar(&o.Dir, "dir", "", "the node's `DIR` (lock, pid file, artifacts, releases, logs)")
	fs.StringVar(&o.Listen, "listen", "", "`HOST:PORT` of the API")
	fs.IntVar(&o.Index, "index", 0, "the node's `INDEX`")
	fs.StringVar(&o.NodeID, "node-id", "", "the node's `ID` (this incarnation; required: the agent acts only on requests signed for it)")
	fs.StringVar(&o.KeysFile, "keys", "", "authorized_keys `FILE` (default DIR/authorized_keys)")
	fs.Int64Var(&o.MaxArtifact, "max-artifact", DefaultMaxArtifact, "the largest artifact upload, in `BYTES` (413 beyond)")
}
