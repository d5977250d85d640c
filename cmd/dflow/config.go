package main

import (
	"context"
	"errors"
	"os"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/report"
	"github.com/distributive-flow/dflow/scaffold"
	"github.com/spf13/cobra"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check dflow.yaml, or show the configuration in effect and where each value comes from",
		Args:  cobra.NoArgs,
	}
	validate := &cobra.Command{
		Use:   "validate",
		Short: "Report every problem in dflow.yaml at once (file:line, did-you-mean); exit 1 if any",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := jsonOutput()
			if err != nil {
				return err
			}
			path, problems, err := controlplane.Validate(g.project)
			switch {
			case err != nil:
				return err
			case asJSON:
				err = report.ProblemsJSON(os.Stdout, problems)
			default:
				report.Problems(os.Stdout, path, problems)
			}
			if err == nil && len(problems) > 0 {
				err = exit(1, errors.New(""))
			}
			return err
		},
	}
	show := queryCmd("show", "Print every setting in effect (dflow.yaml, flags, environment, defaults) and where it comes from",
		func(_ context.Context, cfg deploy.Config) ([]deploy.Setting, error) { return cfg.Settings(), nil }, nil, "", report.Settings)
	cmd.AddCommand(validate, show)
	return cmd
}

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
			report.Init(os.Stdout, r)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing dflow.yaml")
	cmd.Flags().StringSliceVar(&targets, "target", nil, "what to build and ship: executable, library, source (comma-separated); default executable")
	return cmd
}
