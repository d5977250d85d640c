package deploy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseGood(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c Config)
	}{
		{"empty file gives defaults", "", func(t *testing.T, c Config) {
			d := Default("/p/myapp")
			d.File = c.File
			require.Equal(t, d.Backends, c.Backends)
			require.Equal(t, "myapp", c.Name)
			require.Equal(t, []string{"executable"}, c.Target)
		}},
		{"only comments", "# nothing here\n# at all\n", func(t *testing.T, c Config) { require.Equal(t, 7077, c.Nodes.AgentPort) }},
		{"every key", "name: shop\npackage: shop.cabal\ntarget: [executable, source]\nimage: ubuntu-trusty\nkeys: ops_keys\n" +
			"backends:\n  vm: local\n  container: process\n  builder: cabal\n  package_reader: cabal\n  store: etcd://10.0.0.1:2379\n" +
			"nodes:\n  agent_port: 9000\n  parallel: 8\n" +
			"temporal:\n  address: temporal:7233\n  namespace: prod\n  task_queue: shop\n  ui: 0.0.0.0:9233\n",
			func(t *testing.T, c Config) {
				require.Equal(t, "shop", c.Name)
				require.Equal(t, []string{"executable", "source"}, c.Target)
				require.Equal(t, "etcd://10.0.0.1:2379", c.Backends.Store)
				require.Equal(t, 9000, c.Nodes.AgentPort)
				require.Equal(t, 8, c.Nodes.Parallel)
				require.Equal(t, "temporal:7233", c.Temporal.Address)
				require.Equal(t, "/p/myapp/ops_keys", c.KeysPath())
				require.Equal(t, "dflow.yaml:7", c.Where("backends.vm"))
				require.Equal(t, "dflow.yaml:14", c.Where("nodes.parallel"))
			}},
		{"a single target as a word", "target: library\n", func(t *testing.T, c Config) { require.Equal(t, []string{"library"}, c.Target) }},
		{"a key with no value keeps the default", "nodes:\n  parallel:\n", func(t *testing.T, c Config) { require.Equal(t, 4, c.Nodes.Parallel) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("/p/myapp/dflow.yaml", []byte(tt.yaml), "/p/myapp")
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"broken yaml", "name: x\nnodes:\n  agent_port: [1\n", "dflow.yaml:2: not valid YAML"}, // yaml.v3 reports where the flow's context began
		{"tab indentation", "nodes:\n\tparallel: 2\n", "dflow.yaml:2: not valid YAML"},
		{"top level is a list", "- a\n- b\n", "dflow.yaml:1: want a mapping"},
		{"unknown top-level key", "name: x\nimagee: y\n", `dflow.yaml:2: unknown key "imagee" (did you mean image?)`},
		{"unknown nested key", "backends:\n  vm_backend: local\n", `dflow.yaml:2: unknown key "backends.vm_backend" (did you mean backends.vm?)`},
		{"seed-style key at top level", "vm-backend: docker\n", `dflow.yaml:1: unknown key "vm-backend" (did you mean backends.vm?)`},
		{"nested key at top level", "agent_port: 9000\n", `dflow.yaml:1: unknown key "agent_port" (did you mean nodes.agent_port?)`},
		{"typo far from anything", "zzzzzz: 1\n", `dflow.yaml:1: unknown key "zzzzzz"; docs`},
		{"duplicate key", "name: a\nname: b\n", "dflow.yaml:"},
		{"port not a number", "nodes:\n  agent_port: abc\n", `dflow.yaml:2: nodes.agent_port: want a whole number, got "abc"`},
		{"port out of range", "nodes:\n  agent_port: 70000\n", "dflow.yaml:2: nodes.agent_port: 70000 is not a port"},
		{"parallel zero", "nodes:\n  parallel: 0\n", "dflow.yaml:2: nodes.parallel: 0 is out of range"},
		{"mapping where a value goes", "image:\n  a: b\n", "dflow.yaml:2: image: want a single value, got a mapping"},
		{"backends not a mapping", "backends: local\n", "dflow.yaml:1: backends: want a mapping"},
		{"unknown target", "target: [executable, binary]\n", `dflow.yaml:1: target: unknown target "binary"`},
		{"duplicate target", "target: [source, source]\n", `dflow.yaml:1: target: "source" is listed twice`},
		{"bad name", "name: My App\n", `dflow.yaml:1: name: "My App" is not a cluster name`},
		{"empty backend", "backends:\n  store: \"\"\n", "dflow.yaml:2: backends.store: must not be empty"},
		{"bad temporal address", "temporal:\n  address: localhost\n", `dflow.yaml:2: temporal.address: "localhost": want HOST:PORT`},
		{"bad ui port", "temporal:\n  ui: 127.0.0.1:http\n", `dflow.yaml:2: temporal.ui: "127.0.0.1:http": port "http" is not a number`},
		{"frontend without a port", "temporal:\n  frontend: 0.0.0.0\n", `dflow.yaml:2: temporal.frontend: "0.0.0.0": want HOST:PORT`},
		{"max_unavailable zero", "repair:\n  max_unavailable: 0\n", `dflow.yaml:2: repair.max_unavailable: "0": want a whole number of nodes`},
		{"max_unavailable over 100%", "repair:\n  max_unavailable: 150%\n", `dflow.yaml:2: repair.max_unavailable: "150%": want a percentage from 1% to 100%`},
		{"rollback_on_version_fault not a bool", "repair:\n  rollback_on_version_fault: maybe\n", "dflow.yaml:2: repair.rollback_on_version_fault: want true or false"},
		{"unknown stuck action", "deploy:\n  stuck_action: retry\n", `dflow.yaml:2: deploy.stuck_action: "retry": want abort`},
		{"stuck_timeout zero", "deploy:\n  stuck_timeout: 0s\n", "dflow.yaml:2: deploy.stuck_timeout: must be longer than 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("/p/x/dflow.yaml", []byte(tt.yaml), "/p/x")
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce))
		})
	}
}

func TestRepairUnavailable(t *testing.T) {
	tests := []struct {
		value string
		count int
		want  int
	}{
		{"1", 3, 1},
		{"2", 5, 2},
		{"5", 3, 3},    // never more than the cluster
		{"34%", 3, 1},  // 1.02 rounds down
		{"50%", 10, 5}, // half
		{"10%", 3, 1},  // 0.3 rounds down to 0, at least 1
		{"100%", 4, 4}, // all of it, when asked for
		{"", 3, 1},     // the default
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, Repair{MaxUnavailable: tt.value}.Unavailable(tt.count), "%q of %d", tt.value, tt.count)
	}
}

func TestSetAndWhere(t *testing.T) {
	c, err := Parse("/p/x/dflow.yaml", []byte("backends:\n  vm: local\n"), "/p/x")
	require.NoError(t, err)
	require.Equal(t, "dflow.yaml:2", c.Where("backends.vm"))
	require.Equal(t, "default", c.Where("image"))
	require.NoError(t, c.Set("backends.vm", "docker", "--vm-backend"))
	require.Equal(t, "docker", c.Backends.VM)
	require.Equal(t, "--vm-backend", c.Where("backends.vm"))
	require.NoError(t, c.Set("nodes.parallel", "2", "--parallel"))
	require.Equal(t, 2, c.Nodes.Parallel)

	err = c.Set("nodes.agent_port", "0", "--agent-port")
	require.EqualError(t, err, "--agent-port: nodes.agent_port: 0 is not a port (1-65535)")
	require.Equal(t, 7077, c.Nodes.AgentPort, "a refused value changes nothing")
	require.Equal(t, "default", c.Where("nodes.agent_port"))
	require.Error(t, c.Set("backends", "x", "--x"))
	require.Error(t, c.Set("nope", "x", "--x"))
	require.Equal(t, "docker", c.Get("backends.vm"))
	require.Equal(t, "2", c.Get("nodes.parallel"))
}

func TestConfigTravelsAsJSON(t *testing.T) {
	c, err := Parse("/p/x/dflow.yaml", []byte("name: x\ntarget: [library]\nnodes:\n  parallel: 3\n"), "/p/x")
	require.NoError(t, err)
	b, err := json.Marshal(c)
	require.NoError(t, err)
	var back Config
	require.NoError(t, json.Unmarshal(b, &back))
	c.sources = nil
	require.Equal(t, c, back)
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b")
	require.NoError(t, os.MkdirAll(deep, 0o755))
	got, err := Find(deep)
	require.NoError(t, err)
	require.Equal(t, "", got)
	require.NoError(t, os.WriteFile(filepath.Join(root, FileName), nil, 0o644))
	got, err = Find(deep)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, FileName), got)
}

func TestInitFileParsesToTheDefaults(t *testing.T) {
	data := InitFile("hello", "hello.cabal")
	c, err := Parse("/p/hello/dflow.yaml", data, "/p/hello")
	require.NoError(t, err)
	want := Default("/p/hello")
	want.File = c.File
	want.Package = "hello.cabal"
	c.sources = nil
	require.Equal(t, want, c)
	// Every key of the schema appears in the template.
	for _, k := range schemaKeys() {
		leaf := k[len(k)-len(k[lastDot(k)+1:]):]
		require.Contains(t, string(data), leaf+":", k)
	}
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

// TestProblemsAllAtOnce: config validate's list, every problem with its
// line, names and types first, then values; a valid file has none.
func TestProblemsAllAtOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dflow.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`name: shop
imagee: debian
nodes:
  agent_port: abc
  parallel: 0
app:
  port: 8080
  mode: sideways
repair:
  max_unavailable: 0
`), 0o644))
	var got []string
	for _, err := range Problems(path, dir) {
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), "%v", err)
		got = append(got, err.Error())
	}
	require.Equal(t, []string{
		`dflow.yaml:2: unknown key "imagee" (did you mean image?); docs/dflow-yaml.md lists every key`,
		`dflow.yaml:4: nodes.agent_port: want a whole number, got "abc"`,
		`dflow.yaml:5: nodes.parallel: 0 is out of range (1-64)`,
		`dflow.yaml:8: app.mode: unknown mode "sideways" (want any of http, tcp, restart)`,
		`dflow.yaml:10: repair.max_unavailable: "0": want a whole number of nodes (at least 1) or a percentage such as 34%`,
	}, got)

	require.NoError(t, os.WriteFile(path, []byte("name: shop\n"), 0o644))
	require.Empty(t, Problems(path, dir))
	require.NoError(t, os.WriteFile(path, []byte("name: [\n"), 0o644))
	require.Len(t, Problems(path, dir), 1, "broken YAML is one problem: nothing after it can be read")
}
