package main

import (
	"io"
	"time"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/report"
	"github.com/spf13/cobra"
)

func newStatusCmd() *cobra.Command {
	return queryCmd("status", "The cluster on one screen: control plane, workers, releases, running operation, nodes", controlplane.ReadStatus, nil, "",
		func(w io.Writer, s controlplane.Status) error { return report.Status(w, s, time.Now()) })
}
