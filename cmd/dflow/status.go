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
		Long: `Show, without changing anything, the control plane (where it is, its Web UI, the workers
polling the cluster's task queue), the release that serves and the one a rollback goes back
to, the operation that holds the cluster lock (with its progress and its Web UI page), the
running watchers (repair --watch, chaos-monkey --rampage, verify --watch) and schedules, and
every node: address, state, the version it serves, its newest verify verdict against the
threshold, and when its agent last answered. The embedded control plane is not started
for this: when it does not run, status says so and shows the rest.`,
		Example: `  dflow status
  dflow status -o json | jq '.nodes[] | select(.state != "running")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd, controlplane.ReadStatus, nil, "", func(w io.Writer, s controlplane.Status) error {
				return report.Status(w, s, time.Now())
			})
		},
	}
	return cmd
}
