package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/distributive-flow/dflow/deploy"
	"github.com/spf13/cobra"
)

func newInitCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented dflow.yaml for the package in this directory",
		Long: `Write dflow.yaml for the package file (*.cabal or package.yaml) in this directory:
every key with its default and a comment saying what it does.`,
		Example: `  cd myapp && dflow init
  dflow init --force     # overwrite an existing dflow.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := projectDir()
			if err != nil {
				return err
			}
			out := filepath.Join(dir, deploy.FileName)
			if _, err := os.Stat(out); err == nil && !force {
				return fmt.Errorf("init: %s exists; --force overwrites it", out)
			}
			pkg, err := findPackage(dir)
			if err != nil {
				return fmt.Errorf("init: %w", err)
			}
			name, err := packageName(filepath.Join(dir, pkg))
			if err != nil {
				return fmt.Errorf("init: %w", err)
			}
			data := deploy.InitFile(sanitize(name), pkg)
			if _, err := deploy.Parse(out, data, dir); err != nil {
				return fmt.Errorf("init: the generated file does not parse (a bug): %w", err)
			}
			if err := os.WriteFile(out, data, 0o644); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			fmt.Printf("wrote %s for package %s (%s)\nnext: `dflow set 3` makes three local nodes\n", out, name, pkg)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing dflow.yaml")
	return cmd
}

// findPackage returns the one package file in dir.
func findPackage(dir string) (string, error) {
	var found []string
	matches, _ := filepath.Glob(filepath.Join(dir, "*.cabal"))
	for _, m := range matches {
		found = append(found, filepath.Base(m))
	}
	if _, err := os.Stat(filepath.Join(dir, "package.yaml")); err == nil {
		found = append(found, "package.yaml")
	}
	sort.Strings(found)
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no package file (*.cabal or package.yaml) in %s", dir)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("several package files in %s (%s): keep one", dir, strings.Join(found, ", "))
}

var nameField = regexp.MustCompile(`(?i)^name\s*:\s*["']?([A-Za-z0-9][A-Za-z0-9._-]*)`)

// packageName reads the top-level name field of a .cabal or package.yaml.
func packageName(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		if m := nameField.FindStringSubmatch(sc.Text()); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("%s: no top-level name field", path)
}

// sanitize makes a package name a valid cluster name.
func sanitize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-._")
	if s == "" {
		s = "app"
	}
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}
