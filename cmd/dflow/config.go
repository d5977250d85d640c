package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/report"
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
			dir, err := filepath.Abs(g.project)
			if err != nil {
				return err
			}
			path, err := deploy.Find(dir)
			if err != nil {
				return err
			}
			if path == "" {
				return fmt.Errorf("config validate: no %s in %s or its parents; `dflow init` writes one", deploy.FileName, dir)
			}
			errs := deploy.Problems(path, filepath.Dir(path))
			if asJSON {
				err = problemsJSON(errs)
			} else {
				report.Problems(os.Stdout, path, errs)
			}
			if err == nil && len(errs) > 0 {
				err = &exitError{code: 1, err: errors.New("")}
			}
			return err
		},
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "Print every setting in effect (dflow.yaml, flags, environment, defaults) and where it comes from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ask := func(_ context.Context, cfg deploy.Config) ([]deploy.Setting, error) { return cfg.Settings(), nil }
			return query(cmd, ask, nil, "", report.Settings)
		},
	}
	cmd.AddCommand(validate, show)
	return cmd
}

// problemsJSON prints config validate's problems as a JSON list of
// {file, line, key, message}.
func problemsJSON(errs []error) error {
	type problem struct {
		File    string `json:"file,omitempty"`
		Line    int    `json:"line,omitempty"`
		Key     string `json:"key,omitempty"`
		Message string `json:"message"`
	}
	out := []problem{}
	for _, err := range errs {
		var ce *deploy.ConfigError
		if errors.As(err, &ce) {
			out = append(out, problem{File: ce.File, Line: ce.Line, Key: ce.Key, Message: ce.Msg})
		} else {
			out = append(out, problem{Message: err.Error()})
		}
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
