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
		Long: `Write dflow.yaml for the package file (*.cabal or package.yaml) in this directory:
every key with its default and a comment saying what it does.

The target is the package's executable unless --target says otherwise. A package
without an executable has nothing to run on the nodes: init then names the
packages below this directory that have one, and writes nothing.`,
		Example: `  cd myapp && dflow init
  dflow init --force              # overwrite an existing dflow.yaml
  dflow init --target library     # ship the library (cabal sdist) instead`,
		Args: cobra.NoArgs,
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
