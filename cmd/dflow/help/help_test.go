package help

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestApplyAndCheck(t *testing.T) {
	root := &cobra.Command{Use: "dflow"}
	deploy := &cobra.Command{Use: "deploy", Run: func(*cobra.Command, []string) {}}
	retry := &cobra.Command{Use: "retry", Run: func(*cobra.Command, []string) {}}
	deploy.AddCommand(retry)
	root.AddCommand(deploy, &cobra.Command{Use: "nosuch", Run: func(*cobra.Command, []string) {}})
	Apply(root)
	if !strings.HasPrefix(deploy.Long, "Build the target") || strings.Contains(deploy.Long, "```") {
		t.Errorf("deploy's Long: %q", deploy.Long)
	}
	if !strings.HasPrefix(retry.Example, "  dflow deploy retry\n") || strings.HasSuffix(retry.Example, "\n") || strings.Contains(retry.Example, "```") {
		t.Errorf("deploy retry's Example: %q", retry.Example)
	}
	err := Check(root)
	if err == nil || !strings.Contains(err.Error(), "missing [nosuch.md]") {
		t.Errorf("Check: %v, want nosuch.md missing", err)
	}
}
