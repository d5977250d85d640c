package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SecretsFileName is app.secrets_file's default, in the state directory.
const SecretsFileName = "secrets.env"

// SecretsPath is app.secrets_file resolved against the project root, or
// .dflow/secrets.env when unset.
func (c Config) SecretsPath() string {
	if c.App.SecretsFile == "" {
		return filepath.Join(c.StateDir(), SecretsFileName)
	}
	return c.ProjectPath(c.App.SecretsFile)
}

// ErrSecret marks a secret that cannot be read: missing, or in a file that
// others may read.
var ErrSecret = errors.New("secret")

// Secrets reads the value of every name in app.secrets: from the secrets
// file (KEY=VALUE lines; blank lines and lines starting with # are
// skipped), else from lookup (the worker's environment). The file must not
// be readable by group or others. Errors name the secret and the file,
// never a value.
func (c Config) Secrets(lookup func(string) (string, bool)) (map[string]string, error) {
	if len(c.App.Secrets) == 0 {
		return nil, nil
	}
	path := c.SecretsPath()
	file := map[string]string{}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("%w: read %s: %v", ErrSecret, path, err)
	default:
		st, err := os.Stat(path)
		if err == nil && st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%w: %s is mode %04o: others can read the secrets in it; run: chmod 600 %s", ErrSecret, path, st.Mode().Perm(), path)
		}
		if file, err = parseEnvFile(path, data); err != nil {
			return nil, err
		}
	}
	out := make(map[string]string, len(c.App.Secrets))
	for _, k := range c.App.Secrets {
		if v, ok := file[k]; ok {
			out[k] = v
			continue
		}
		if v, ok := lookup(k); ok {
			out[k] = v
			continue
		}
		return nil, fmt.Errorf("%w %s (app.secrets): not in %s nor in the worker's environment; add a line %s=... to that file (mode 0600)", ErrSecret, k, path, k)
	}
	return out, nil
}

// parseEnvFile reads KEY=VALUE lines. Its errors give line numbers, not
// contents.
func parseEnvFile(path string, data []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		k = strings.TrimSpace(k)
		if !ok || !envName.MatchString(k) {
			return nil, fmt.Errorf("%w: %s:%d: want KEY=VALUE", ErrSecret, path, n)
		}
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrSecret, path, err)
	}
	return out, nil
}
