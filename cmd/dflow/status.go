package main

import (
	"io"
	"time"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/report"
	"github.com/spf13/cobra"
)

func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "The cluster on one screen: control plane, workers, releases, running operation, nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd, controlplane.ReadStatus, nil, "", func(w io.Writer, s controlplane.Status) error {
				return report.Status(w, s, time.Now())
			})
		},
	}
	return cmd
}
