package agent

import (
	"fmt"
	"os"
	"path/filepath"
)

// Command is how to run the agent from this machine's dflow: the
// dflow-agent executable beside the running executable when there is one
// (the agent alone: a fraction of dflow's size and memory), else the
// running executable with the "agent" subcommand.
func Command() ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the dflow executable: %w", err)
	}
	slim := filepath.Join(filepath.Dir(exe), "dflow-agent")
	if st, err := os.Stat(slim); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return []string{slim}, nil
	}
	return []string{exe, "agent"}, nil
}
