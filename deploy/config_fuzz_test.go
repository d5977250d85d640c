package deploy

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse: dflow.yaml parsing never panics; every error is a
// *ConfigError with a line >= 0; whatever parses also validates and can be
// set back key by key.
func FuzzParse(f *testing.F) {
	f.Add(string(InitFile("hello", "hello.cabal")))
	for _, s := range []string{
		"", "name: x\n", "name: [1, 2]\n", "app:\n  port: 8080\n  mode: tcp\n", "backends: {vm: local}\n",
		"target: executable\n", "target: [executable, executable]\n", "app:\n  env: [A=1, B]\n",
		"verify:\n  program: v.hs\n  threshold: 101\n", "app:\n  ready_timeout: -1s\n", "nodes:\n  parallel: 0\n",
		"a: &x [1]\nb: *x\n", "temporal:\n  ui: :0\n", "\t- 1\n", "name: ok\nname: again\n", "deploy:\n  parallel: 1e3\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		c, err := Parse("dflow.yaml", []byte(data), "/tmp/project")
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *ConfigError", err, err)
			}
			if ce.Line < 0 || ce.Msg == "" {
				t.Fatalf("bad ConfigError %+v", ce)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed but does not validate: %v", err)
		}
		for _, k := range schemaKeys() {
			if schema[k] == "map" {
				continue
			}
			v := c.Get(k)
			if schema[k] == "list" && v == "" {
				continue // an empty list cannot be given back as a flag
			}
			if err := c.Set(k, v, "--fuzz"); err != nil && !strings.Contains(err.Error(), "--fuzz") {
				t.Fatalf("set %s back to %q: %v", k, v, err)
			}
		}
	})
}
