// Command dflow-agent is the node agent alone: what `dflow agent` runs, in a
// binary of about 13 MB (dflow, with the embedded Temporal server and Web
// UI, is about 220 MB) that idles in about 10 MB of memory. The local VM
// backend runs it when it sits next to the dflow executable (`make build`
// puts it there); otherwise nodes run `dflow agent`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/distributive-flow/dflow/agent"
	"github.com/distributive-flow/dflow/version"
)

func main() {
	var o agent.Options
	fs := flag.NewFlagSet("dflow-agent", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: dflow-agent --dir DIR --listen HOST:PORT [--index N] [--node-id ID] [--keys FILE]

The dflow node agent (the same as `+"`dflow agent`"+`): serves the node's API on --listen and
refuses every request not signed by a key in --keys (default DIR/authorized_keys).

Example:
  dflow-agent --dir /var/lib/dflow --listen 10.0.0.5:7077 --index 3 --node-id web-3

Flags:
`)
		fs.PrintDefaults()
	}
	showVersion := fs.Bool("version", false, "print the version and exit")
	agent.BindFlags(fs, &o)
	_ = fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println(version.String())
		return
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "dflow-agent: unexpected argument %q (see dflow-agent -h)\n", fs.Arg(0))
		os.Exit(2)
	}
	o.Version = version.String()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := agent.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "dflow-agent:", err)
		os.Exit(1)
	}
}
