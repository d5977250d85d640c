package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// KeyFile is the name of the private key LoadOrCreateKey keeps in its
// directory; the public key is KeyFile + ".pub".
const KeyFile = "id_ed25519"

// minRSABits is the shortest rsa key accepted in authorized_keys.
const minRSABits = 2048

// LoadOrCreateKey returns the signer stored at dir/id_ed25519, creating an
// ed25519 key pair there first if none exists: the private key in OpenSSH
// format, mode 0600, and the public key at dir/id_ed25519.pub as an
// authorized_keys line ending in comment, mode 0644. dir is created 0700 if
// missing.
//
// Each file is written to a temporary file, synced, and then put in place
// atomically. The private key is put in place with a hard link, which fails
// if the file exists, so when several processes race to create the key one
// wins and the others load its key. A private key readable by group or others
// is refused, as ssh does. A missing public key file is written again; one
// that holds another key is an error.
func LoadOrCreateKey(dir, comment string) (ssh.Signer, error) {
	path := filepath.Join(dir, KeyFile)
	s, err := loadKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		s, err = createKey(dir, comment)
	}
	if err != nil {
		return nil, err
	}
	if err := ensurePublicKey(dir, s.PublicKey(), comment); err != nil {
		return nil, err
	}
	return s, nil
}

func loadKey(path string) (ssh.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("load key %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("load key %s: permissions %#o are too open: the private key must be readable by its owner only (chmod 600)", path, perm)
	}
	pemBytes, err := readAllLimit(f, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	s, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, fmt.Errorf("load key %s: the key is encrypted; dflow needs an unencrypted key", path)
		}
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	return s, nil
}

func readAllLimit(r io.Reader, n int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > n {
		return nil, fmt.Errorf("larger than %d bytes", n)
	}
	return b, nil
}

// createKey writes a new ed25519 key to dir/id_ed25519 unless another
// process gets there first, and returns whichever key is there.
func createKey(dir, comment string) (ssh.Signer, error) {
	path := filepath.Join(dir, KeyFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create key %s: %w", path, err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create key %s: %w", path, err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("create key %s: %w", path, err)
	}
	tmp, err := writeTemp(dir, KeyFile, pem.EncodeToMemory(block), 0o600)
	if err != nil {
		return nil, fmt.Errorf("create key %s: %w", path, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadKey(path) // another process won the race
		}
		return nil, fmt.Errorf("create key %s: %w", path, err)
	}
	if err := os.Remove(tmp); err != nil {
		return nil, fmt.Errorf("create key %s: remove temporary file: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("create key %s: %w", path, err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("create key %s: %w", path, err)
	}
	return s, nil
}

// ensurePublicKey writes dir/id_ed25519.pub if it is missing and checks that
// it holds pub otherwise.
func ensurePublicKey(dir string, pub ssh.PublicKey, comment string) error {
	path := filepath.Join(dir, KeyFile+".pub")
	content, err := os.ReadFile(path)
	switch {
	case err == nil:
		got, _, _, _, err := ssh.ParseAuthorizedKey(content)
		if err != nil {
			return fmt.Errorf("public key %s: %w", path, err)
		}
		if !bytes.Equal(got.Marshal(), pub.Marshal()) {
			return fmt.Errorf("public key %s (%s) does not belong to the private key %s (%s)",
				path, ssh.FingerprintSHA256(got), filepath.Join(dir, KeyFile), ssh.FingerprintSHA256(pub))
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("public key %s: %w", path, err)
	}
	line := bytes.TrimSuffix(ssh.MarshalAuthorizedKey(pub), []byte("\n"))
	if c := strings.Join(strings.Fields(comment), " "); c != "" {
		line = append(append(line, ' '), c...)
	}
	line = append(line, '\n')
	tmp, err := writeTemp(dir, KeyFile+".pub", line, 0o644)
	if err != nil {
		return fmt.Errorf("public key %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("public key %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("public key %s: %w", path, err)
	}
	return nil
}

// writeTemp writes content to a new temporary file in dir with mode perm,
// synced, and returns its path.
func writeTemp(dir, name string, content []byte, perm os.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	fail := func(err error) (string, error) {
		_ = f.Close()
		_ = os.Remove(tmp)
		return "", err
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(content); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// AuthorizedKeys returns the content of an authorized_keys file holding pub
// followed by the keys in the file at extraPath (if extraPath != ""), without
// duplicates: a key already present is dropped, the first occurrence wins.
// Lines from extraPath are kept as written (options and comment), so no
// restriction is lost. A malformed or refused line in extraPath (see
// ParseAuthorizedKeys) is an error naming "path:line".
func AuthorizedKeys(pub ssh.PublicKey, extraPath string) (string, error) {
	if pub == nil {
		return "", errors.New("authorized keys: no public key")
	}
	var b strings.Builder
	b.Write(ssh.MarshalAuthorizedKey(pub))
	if extraPath == "" {
		return b.String(), nil
	}
	content, err := os.ReadFile(extraPath)
	if err != nil {
		return "", fmt.Errorf("authorized keys: %w", err)
	}
	entries, err := parseAuthorizedKeys(extraPath, content)
	if err != nil {
		return "", fmt.Errorf("authorized keys: %w", err)
	}
	seen := map[string]bool{string(pub.Marshal()): true}
	for _, e := range entries {
		blob := string(e.key.Marshal())
		if seen[blob] {
			continue
		}
		seen[blob] = true
		b.WriteString(e.line)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// ParseAuthorizedKeys parses authorized_keys content (comments and blank
// lines allowed) and returns its keys in order; errors name the line as
// "name:line". Besides lines that do not parse, it refuses certificates, DSA
// keys, rsa keys shorter than 2048 bits, and keys whose options restrict them
// in ways a dflow agent cannot honour (command=, from=, cert-authority,
// principals=, expiry-time=, verify-required) or that it does not know:
// accepting those would give the key more power over the node than its line
// says. Options that only restrict ssh features (no-pty, restrict,
// no-port-forwarding, ...) are accepted.
func ParseAuthorizedKeys(name string, content []byte) ([]ssh.PublicKey, error) {
	entries, err := parseAuthorizedKeys(name, content)
	if err != nil {
		return nil, err
	}
	keys := make([]ssh.PublicKey, len(entries))
	for i, e := range entries {
		keys[i] = e.key
	}
	return keys, nil
}

type keyLine struct {
	key  ssh.PublicKey
	line string // trimmed, as written
}

// harmlessOptions restrict or enable ssh session features only; they have no
// meaning for requests to an agent.
var harmlessOptions = map[string]bool{
	"agent-forwarding": true, "no-agent-forwarding": true,
	"port-forwarding": true, "no-port-forwarding": true,
	"pty": true, "no-pty": true,
	"user-rc": true, "no-user-rc": true,
	"x11-forwarding": true, "no-x11-forwarding": true,
	"restrict": true, "environment": true, "permitopen": true,
	"permitlisten": true, "tunnel": true, "no-touch-required": true,
}

func parseAuthorizedKeys(name string, content []byte) ([]keyLine, error) {
	var out []keyLine
	for i, raw := range strings.Split(string(content), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		where := fmt.Sprintf("%s:%d", name, i+1)
		key, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("%s: not an authorized key line: %w", where, err)
		}
		if len(rest) != 0 {
			return nil, fmt.Errorf("%s: unexpected data after the key", where)
		}
		for _, o := range options {
			oname, _, _ := strings.Cut(o, "=")
			if !harmlessOptions[strings.ToLower(oname)] {
				return nil, fmt.Errorf("%s: option %q restricts this key in a way the dflow agent cannot honour; use a line without it", where, oname)
			}
		}
		if err := checkKeyType(key); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, keyLine{key: key, line: line})
	}
	return out, nil
}

func checkKeyType(key ssh.PublicKey) error {
	if _, ok := key.(*ssh.Certificate); ok {
		return fmt.Errorf("%s certificates are not supported; list the plain key", key.Type())
	}
	switch key.Type() {
	case ssh.InsecureKeyAlgoDSA:
		return errors.New("DSA (ssh-dss) keys are insecure and not accepted")
	case ssh.KeyAlgoRSA:
		ck, ok := key.(ssh.CryptoPublicKey)
		if !ok {
			return errors.New("rsa key without a public modulus")
		}
		rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok {
			return errors.New("rsa key without a public modulus")
		}
		if bits := rk.N.BitLen(); bits < minRSABits {
			return fmt.Errorf("rsa key of %d bits is too short (want at least %d)", bits, minRSABits)
		}
	}
	return nil
}
