package worker_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/distributive-flow/dflow/backends/store/embedded"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/worker"
	"github.com/stretchr/testify/require"
)

// TestOpenMakesTheStateDirPrivate opens the backends (what every activity
// does) on a new project and on one an older dflow left with a 0755 .dflow/
// and a 0644 store.db, and finds .dflow/ 0700 and the store and the signing
// key 0600 both times.
func TestOpenMakesTheStateDirPrivate(t *testing.T) {
	tests := []struct {
		name string
		old  bool // .dflow/ and store.db as an older dflow left them
	}{
		{name: "new project"},
		{name: "older install", old: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := deploy.Default(t.TempDir())
			state := cfg.StateDir()
			if tt.old {
				require.NoError(t, os.Mkdir(state, 0o755))
				require.NoError(t, os.Chmod(state, 0o755))
				_, err := embedded.Open(filepath.Join(state, "store.db"))
				require.NoError(t, err)
				require.NoError(t, os.Chmod(filepath.Join(state, "store.db"), 0o644))
			}
			b, err := worker.Open(context.Background(), cfg, worker.Env{AgentCommand: []string{"true"}})
			require.NoError(t, err)
			b.Close()
			for name, want := range map[string]os.FileMode{".": 0o700, "store.db": 0o600, "id_ed25519": 0o600} {
				fi, err := os.Stat(filepath.Join(state, name))
				require.NoError(t, err)
				require.Equal(t, want, fi.Mode().Perm(), "%s is %#o", name, fi.Mode().Perm())
			}
		})
	}
}
