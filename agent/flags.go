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
	fs.Int64Var(&o.LogMaxSize, "log-max-size", DefaultLogMaxSize, "rotate an app version's log, and the agent's own, beyond `BYTES` (one previous part is kept)")
	fs.StringVar(&o.LogFile, "log-file", "", "the agent's own log `FILE`, served to `dflow logs --agent` (default: where standard error goes if a file, else DIR/agent.log)")
}
