package auth_test

import (
	"bytes"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent/auth"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func fileNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	s, err := auth.LoadOrCreateKey(dir, "dflow@laptop")
	require.NoError(t, err)
	require.Equal(t, ssh.KeyAlgoED25519, s.PublicKey().Type())
	require.Equal(t, []string{"id_ed25519", "id_ed25519.pub"}, fileNames(t, dir), "no temporary file is left behind")

	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	fi, err = os.Stat(filepath.Join(dir, "id_ed25519"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	fi, err = os.Stat(filepath.Join(dir, "id_ed25519.pub"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

	// The private key is in OpenSSH format; the public key is an
	// authorized_keys line with the comment.
	priv, err := os.ReadFile(filepath.Join(dir, "id_ed25519"))
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(priv, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")))
	pubLine, err := os.ReadFile(filepath.Join(dir, "id_ed25519.pub"))
	require.NoError(t, err)
	require.Equal(t, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))+" dflow@laptop\n", string(pubLine))
	pub, comment, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	require.NoError(t, err)
	require.Equal(t, "dflow@laptop", comment)
	require.Equal(t, s.PublicKey().Marshal(), pub.Marshal())

	// Loading again gives the same key, and it signs.
	again, err := auth.LoadOrCreateKey(dir, "other comment")
	require.NoError(t, err)
	require.Equal(t, s.PublicKey().Marshal(), again.PublicKey().Marshal())
	sig, err := again.Sign(rand.Reader, []byte("x"))
	require.NoError(t, err)
	require.NoError(t, s.PublicKey().Verify([]byte("x"), sig))

	// A lost public key file is written again.
	require.NoError(t, os.Remove(filepath.Join(dir, "id_ed25519.pub")))
	_, err = auth.LoadOrCreateKey(dir, "dflow@laptop")
	require.NoError(t, err)
	rewritten, err := os.ReadFile(filepath.Join(dir, "id_ed25519.pub"))
	require.NoError(t, err)
	require.Equal(t, string(pubLine), string(rewritten))
}

func TestLoadOrCreateKeyRefuses(t *testing.T) {
	t.Run("private key readable by others", func(t *testing.T) {
		dir := t.TempDir()
		_, err := auth.LoadOrCreateKey(dir, "c")
		require.NoError(t, err)
		require.NoError(t, os.Chmod(filepath.Join(dir, "id_ed25519"), 0o644))
		_, err = auth.LoadOrCreateKey(dir, "c")
		require.ErrorContains(t, err, "too open")
		require.ErrorContains(t, err, filepath.Join(dir, "id_ed25519"))
	})
	t.Run("public key of another key", func(t *testing.T) {
		dir := t.TempDir()
		_, err := auth.LoadOrCreateKey(dir, "c")
		require.NoError(t, err)
		other := newEd25519(t)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "id_ed25519.pub"), ssh.MarshalAuthorizedKey(other.PublicKey()), 0o644))
		_, err = auth.LoadOrCreateKey(dir, "c")
		require.ErrorContains(t, err, "does not belong to the private key")
	})
	t.Run("garbage private key", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "id_ed25519"), []byte("garbage"), 0o600))
		_, err := auth.LoadOrCreateKey(dir, "c")
		require.ErrorContains(t, err, filepath.Join(dir, "id_ed25519"))
	})
}

func TestLoadOrCreateKeyConcurrently(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	const n = 8
	fps := make([]string, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			s, err := auth.LoadOrCreateKey(dir, "c")
			errs[i] = err
			if err == nil {
				fps[i] = ssh.FingerprintSHA256(s.PublicKey())
			}
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, fps[0], fps[i], "two processes got different keys")
	}
	s, err := auth.LoadOrCreateKey(dir, "c")
	require.NoError(t, err)
	require.Equal(t, fps[0], ssh.FingerprintSHA256(s.PublicKey()))
	require.Equal(t, []string{"id_ed25519", "id_ed25519.pub"}, fileNames(t, dir))
}

func TestAuthorizedKeys(t *testing.T) {
	self := newEd25519(t).PublicKey()
	b, c := newEd25519(t).PublicKey(), newECDSA(t, elliptic.P256()).PublicKey()
	line := func(k ssh.PublicKey) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) }
	dir := t.TempDir()
	extra := filepath.Join(dir, "extra_keys")
	require.NoError(t, os.WriteFile(extra, []byte(strings.Join([]string{
		"# operators",
		"",
		line(self) + " the same key again",
		`no-pty,no-port-forwarding ` + line(b) + " bob@desk",
		"   " + line(b) + " bob again",
		line(c) + " carol\r",
		"",
	}, "\n")), 0o600))

	got, err := auth.AuthorizedKeys(self, extra)
	require.NoError(t, err)
	require.Equal(t, line(self)+"\n"+
		`no-pty,no-port-forwarding `+line(b)+" bob@desk\n"+
		line(c)+" carol\n", got)
	keys, err := auth.ParseAuthorizedKeys("merged", []byte(got))
	require.NoError(t, err)
	require.Len(t, keys, 3)

	got, err = auth.AuthorizedKeys(self, "")
	require.NoError(t, err)
	require.Equal(t, line(self)+"\n", got)

	_, err = auth.AuthorizedKeys(self, filepath.Join(dir, "missing"))
	require.ErrorContains(t, err, "missing")

	bad := filepath.Join(dir, "bad_keys")
	require.NoError(t, os.WriteFile(bad, []byte("# ok\n"+line(b)+"\nssh-ed25519 AAAAnot-base64!!\n"), 0o600))
	_, err = auth.AuthorizedKeys(self, bad)
	require.ErrorContains(t, err, bad+":3:")
}

func TestParseAuthorizedKeys(t *testing.T) {
	k := newEd25519(t)
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.PublicKey())))
	cert := &ssh.Certificate{Key: k.PublicKey(), CertType: ssh.UserCert, ValidPrincipals: []string{"u"}, ValidBefore: uint64(time.Now().Add(time.Hour).Unix())}
	require.NoError(t, cert.SignCert(rand.Reader, newEd25519(t)))

	cases := []struct {
		name    string
		content string
		want    int    // keys
		wantErr string // substring
	}{
		{name: "empty", content: "", want: 0},
		{name: "comments and blank lines", content: "# a\n\n   \n" + line + " me\n# b\n", want: 1},
		{name: "harmless options", content: `restrict,no-pty,environment="A=b" ` + line, want: 1},
		{name: "malformed line", content: "# a\n" + line + "\nnot a key\n", wantErr: "f:3: "},
		{name: "wrong key type name", content: "ssh-rsa " + strings.Fields(line)[1], wantErr: "f:1: "},
		{name: "command= option", content: "\n" + `command="rsync --server" ` + line, wantErr: `f:2: option "command"`},
		{name: "from= option", content: `from="10.0.0.0/8" ` + line, wantErr: `f:1: option "from"`},
		{name: "cert-authority", content: `cert-authority ` + line, wantErr: `f:1: option "cert-authority"`},
		{name: "unknown option", content: `frobnicate ` + line, wantErr: `f:1: option "frobnicate"`},
		{name: "certificate", content: string(ssh.MarshalAuthorizedKey(cert)), wantErr: "f:1: ssh-ed25519-cert-v01@openssh.com certificates are not supported"},
		{name: "short rsa key", content: string(ssh.MarshalAuthorizedKey(newRSA(t, 1024).PublicKey())), wantErr: "f:1: rsa key of 1024 bits is too short"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := auth.ParseAuthorizedKeys("f", []byte(tc.content))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, keys, tc.want)
		})
	}
}
