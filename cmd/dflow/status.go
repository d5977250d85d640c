package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/report"
	"github.com/spf13/cobra"
)

func newStatusCmd() *cobra.Command {
	return queryCmd("status", "The cluster on one screen: control plane, workers, releases, running operation, nodes", controlplane.ReadStatus, nil, "",
		func(w io.Writer, s controlplane.Status) error { return report.Status(w, s, time.Now()) })
}

func newVersionsCmd() *cobra.Command {
	return queryCmd("versions", "Show which version every node serves, and the others it holds", controlplane.NodeVersions, none, "no nodes; `dflow set 3` makes three",
		func(w io.Writer, rows []controlplane.VersionRow) error {
			mixed, err := report.Versions(w, rows)
			if mixed {
				fmt.Fprintln(os.Stderr, "dflow: note: the nodes serve different versions")
			}
			return err
		})
}

func newCompareChecksumsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "compare-checksums",
		Short: "Recompute the executable's sha256 on every node and compare it with the local build",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rows, err := show(cmd, controlplane.CompareChecksums, nil, "", report.Checksums)
			if err != nil {
				return err
			}
			switch bad, unknown := controlplane.Mismatches(rows); {
			case len(bad) > 0:
				return exit(1, fmt.Errorf("compare-checksums: %d mismatching (nodes %s): the executable on the node is not what was built", len(bad), report.JoinInts(bad)))
			case unknown > 0:
				return exit(2, fmt.Errorf("compare-checksums: %d could not be checked", unknown))
			}
			return nil
		},
	}
}
