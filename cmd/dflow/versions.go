package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/report"
	"github.com/spf13/cobra"
)

func newVersionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "versions",
		Short: "Show which version every node serves, and the others it holds",
		Long: `Ask every node's agent which version serves behind its public port (the git commit of
the build) and which other versions are present (running beside it, draining, or stopped
and kept). -o json gives per node: index, address, app_url, serving, serving_id, others
and every process with its state.`,
		Example: `  dflow versions
  dflow versions -o json | jq -r '.[] | "\(.index) \(.serving)"'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd, controlplane.NodeVersions, none, "no nodes; `dflow set 3` makes three", func(w io.Writer, rows []controlplane.VersionRow) error {
				mixed, err := report.Versions(w, rows)
				if mixed {
					fmt.Fprintln(os.Stderr, "dflow: note: the nodes serve different versions")
				}
				return err
			})
		},
	}
	addFlags(cmd, "store")
	return cmd
}

func newCompareChecksumsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compare-checksums",
		Short: "Recompute the executable's sha256 on every node and compare it with the local build",
		Long: `For every version running on every node, have the node's agent recompute the sha256 of
the executable on its disk now, and compare it with the sha256 dflow recorded when it built
that version here. Lists the mismatching nodes and exits 1 on any mismatch (2 when a node
could not be checked).`,
		Example: `  dflow compare-checksums
  dflow compare-checksums -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, cfg, err := outputAndConfig(cmd)
			if err != nil {
				return err
			}
			rows, err := controlplane.CompareChecksums(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			bad, unknown := 0, 0
			for _, r := range rows {
				switch {
				case r.Error != "":
					unknown++
				case !r.OK:
					bad++
				}
			}
			if asJSON {
				if err := json.NewEncoder(os.Stdout).Encode(rows); err != nil {
					return err
				}
			} else {
				if err := report.Checksums(os.Stdout, rows); err != nil {
					return err
				}
			}
			switch {
			case bad > 0:
				var idx []string
				for _, r := range rows {
					if r.Error == "" && !r.OK {
						idx = append(idx, strconv.Itoa(r.Index))
					}
				}
				return &exitError{code: 1, err: fmt.Errorf("compare-checksums: %d mismatching (nodes %s): the executable on the node is not what was built", bad, strings.Join(idx, ", "))}
			case unknown > 0:
				return &exitError{code: 2, err: fmt.Errorf("compare-checksums: %d could not be checked", unknown)}
			}
			return nil
		},
	}
	addFlags(cmd, "store")
	return cmd
}
