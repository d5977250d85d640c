package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/distributive-flow/dflow/cmd/dflow/help"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/cli.md from the command tree")

// TestCLIDocs checks that every command has its help file (cmd/dflow/help)
// and that docs/cli.md says what the commands' --help says.
func TestCLIDocs(t *testing.T) {
	root := newRoot()
	if err := help.Check(root); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "docs", "cli.md")
	want := help.Reference(root)
	if *updateDocs {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("docs/cli.md is not what the commands say (%v): run `go test ./cmd/dflow -run TestCLIDocs -update` and commit it", err)
	}
}
