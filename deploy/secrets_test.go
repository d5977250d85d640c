package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEnvValuesNeverTravelAsJSON(t *testing.T) {
	c := Default(t.TempDir())
	c.App.Env = []string{"TOKEN=hunter2"}
	b, err := json.Marshal(Release{Config: c})
	require.NoError(t, err)
	require.NotContains(t, string(b), "hunter2")
	require.Contains(t, string(b), `"ready_probes":3`, "sanity: the app section is there")
}

func TestConfigRevisions(t *testing.T) {
	var s State
	now := time.Unix(1, 0)
	c := Default(t.TempDir())
	c.App.Env = []string{"A=1"}
	r1 := s.PutConfig(c, now)
	require.Equal(t, int64(1), r1)
	require.Equal(t, r1, s.PutConfig(c, now), "the same configuration is the same revision")
	c.App.Env = []string{"A=2"}
	r2 := s.PutConfig(c, now)
	require.Equal(t, int64(2), r2, "a changed app.env value is a new revision")

	got, err := s.Config(r1)
	require.NoError(t, err)
	require.Equal(t, []string{"A=1"}, got.App.Env)
	require.Equal(t, r1, got.Revision)
	_, err = s.Config(99)
	require.ErrorContains(t, err, "revision 99 is not in the store")

	// The Store's JSON has the values once, in the revision.
	b, err := json.Marshal(s)
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(b), `"A=1"`))

	// Pruning keeps what releases refer to and the newest MaxConfigs others.
	s.Releases = []Release{{ID: 1, Config: Config{Revision: r1}}}
	for i := 0; i < MaxConfigs+10; i++ {
		c.App.Port = 10000 + i
		s.PutConfig(c, now)
	}
	require.LessOrEqual(t, len(s.Configs), MaxConfigs+1)
	_, err = s.Config(r1)
	require.NoError(t, err, "a release's revision is kept")
	_, err = s.Config(r2)
	require.Error(t, err, "an old unreferenced one is dropped")
}

func TestSecrets(t *testing.T) {
	env := map[string]string{"FROM_ENV": "e"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cases := []struct {
		name    string
		file    string
		mode    os.FileMode
		secrets []string
		want    map[string]string
		err     string
	}{
		{name: "none", want: nil},
		{name: "from the file", file: "# c\n\nDB=postgres://x\nexport TOKEN='t t'\n", mode: 0o600, secrets: []string{"DB", "TOKEN"},
			want: map[string]string{"DB": "postgres://x", "TOKEN": "t t"}},
		{name: "the file wins over the environment", file: "FROM_ENV=f\n", mode: 0o600, secrets: []string{"FROM_ENV"}, want: map[string]string{"FROM_ENV": "f"}},
		{name: "from the environment", secrets: []string{"FROM_ENV"}, want: map[string]string{"FROM_ENV": "e"}},
		{name: "missing", file: "DB=x\n", mode: 0o600, secrets: []string{"NOPE"}, err: "NOPE (app.secrets): not in"},
		{name: "readable by others", file: "DB=x\n", mode: 0o644, secrets: []string{"DB"}, err: "chmod 600"},
		{name: "a bad line", file: "DB=x\nnot a line\n", mode: 0o600, secrets: []string{"DB"}, err: "secrets.env:2: want KEY=VALUE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default(t.TempDir())
			c.App.Secrets = tc.secrets
			if tc.file != "" {
				require.NoError(t, os.MkdirAll(c.StateDir(), 0o700))
				p := filepath.Join(c.StateDir(), SecretsFileName)
				require.NoError(t, os.WriteFile(p, []byte(tc.file), tc.mode))
				require.NoError(t, os.Chmod(p, tc.mode))
			}
			got, err := c.Secrets(lookup)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.ErrorIs(t, err, ErrSecret)
				require.NotContains(t, err.Error(), "=x")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestBoundsAndNames(t *testing.T) {
	cases := []struct {
		yaml, err string
	}{
		{"nodes:\n  max: 0\n", "nodes.max: 0 is out of range"},
		{"nodes:\n  max: 100\n", ""},
		{"nodes:\n  max_artifact: 10KiB\n", "nodes.max_artifact: 10.0 KiB is too small"},
		{"nodes:\n  max_artifact: 2GiB\n", ""},
		{"nodes:\n  max_artifact: lots\n", `"lots" is not a size`},
		{"app:\n  env: [PORT=1]\n", "PORT is set by the agent"},
		{"app:\n  env: [HOST=0.0.0.0]\n", "HOST is set by the agent"},
		{"app:\n  env: [\"1X=secretvalue\"]\n", `"1X" is not KEY=VALUE`},
		{"app:\n  secrets: [DB]\n  env: [DB=x]\n", "DB is in app.env too"},
		{"app:\n  secrets: [DB, DB]\n", "DB is listed twice"},
		{"app:\n  secrets: [DFLOW_X]\n", "DFLOW_X is set by the agent"},
		{"app:\n  secrets: [DB]\n  secrets_file: secrets/prod.env\n", ""},
	}
	for _, tc := range cases {
		_, err := Parse("dflow.yaml", []byte(tc.yaml), "/p")
		if tc.err == "" {
			require.NoError(t, err, tc.yaml)
			continue
		}
		require.ErrorContains(t, err, tc.err, tc.yaml)
		require.NotContains(t, err.Error(), "secretvalue")
	}
	c, err := Parse("dflow.yaml", []byte("nodes:\n  max_artifact: 1.5GiB\n"), "/p")
	require.NoError(t, err)
	require.Equal(t, Size(1.5*(1<<30)), c.Nodes.MaxArtifact)
	require.Equal(t, "/p/.dflow/secrets.env", c.SecretsPath())
}
