package main

import (
	"fmt"
	"strings"

	"github.com/distributive-flow/dflow/scaffold"
	"github.com/spf13/cobra"
)

func newInitCmd() *cobra.Command {
	var force bool
	var targets []string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented dflow.yaml for the package in this directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := scaffold.Init(cmd.Context(), g.project, targets, force)
			if err != nil {
				return err
			}
			fmt.Printf("wrote %s for package %s (%s), target [%s]\nnext: `dflow set 3` makes three local nodes\n", r.Path, r.Package, r.File, strings.Join(r.Targets, ", "))
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing dflow.yaml")
	cmd.Flags().StringSliceVar(&targets, "target", nil, "what to build and ship: executable, library, source (comma-separated); default executable")
	return cmd
}
