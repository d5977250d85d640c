package ssh

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrUnknownHostKey is in the error chain when a host's key is not in
// known_hosts (and nodes.host_key_check is strict).
var ErrUnknownHostKey = errors.New("unknown host key")

// ErrHostKeyChanged is in the error chain when a host presents another key
// than known_hosts holds for it: maybe a reinstalled host, maybe an attack.
var ErrHostKeyChanged = errors.New("host key changed")

// HostKeyError is a host key that known_hosts does not vouch for.
type HostKeyError struct {
	Host       Host
	Key        gossh.PublicKey
	KnownHosts string
	Known      []knownhosts.KnownKey // what known_hosts holds for the host; none: unknown
}

func (e *HostKeyError) Error() string {
	fp := e.Key.Type() + " " + gossh.FingerprintSHA256(e.Key)
	name := knownhosts.Normalize(e.Host.dialAddr())
	if len(e.Known) == 0 {
		scan := "ssh-keyscan " + e.Host.Addr
		if e.Host.Port != 22 {
			scan = fmt.Sprintf("ssh-keyscan -p %d %s", e.Host.Port, e.Host.Addr)
		}
		return fmt.Sprintf("host key %s of %s is not in %s: check the fingerprint, then add it (%s >> %s) or set nodes.host_key_check: accept-new to trust hosts on first use",
			fp, name, e.KnownHosts, scan, e.KnownHosts)
	}
	var known []string
	for _, k := range e.Known {
		known = append(known, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), gossh.FingerprintSHA256(k.Key), k.Filename, k.Line))
	}
	return fmt.Sprintf("HOST KEY CHANGED: %s presents %s but %s holds %s; if the host was reinstalled, remove the old key (ssh-keygen -R '%s' -f %s) and connect again, otherwise someone may be in the middle",
		name, fp, e.KnownHosts, strings.Join(known, ", "), name, e.KnownHosts)
}

// Unwrap says which kind of refusal this is.
func (e *HostKeyError) Unwrap() error {
	if len(e.Known) == 0 {
		return ErrUnknownHostKey
	}
	return ErrHostKeyChanged
}

// probeKey is a key no known_hosts holds: checking it against a host's
// entries yields the keys that are known for the host.
var probeKey = sync.OnceValue(func() gossh.PublicKey {
	pub, _, _ := ed25519.GenerateKey(nil)
	k, _ := gossh.NewPublicKey(pub)
	return k
})

// hostKeyCheck returns the callback that checks h's key against known_hosts
// (adding an unknown one when AcceptNewHostKeys) and the host key
// algorithms to ask for: those of the keys known for h, so a host known by
// its ed25519 key is not refused for showing its ecdsa key first.
func (b *Backend) hostKeyCheck(h Host) (gossh.HostKeyCallback, []string, error) {
	file := b.o.KnownHosts
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		if !b.o.AcceptNewHostKeys {
			return func(_ string, _ net.Addr, key gossh.PublicKey) error {
				return &HostKeyError{Host: h, Key: key, KnownHosts: file}
			}, nil, nil
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return nil, nil, fmt.Errorf("known_hosts: %w", err)
		}
		if err := os.WriteFile(file, nil, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, nil, fmt.Errorf("known_hosts: %w", err)
		}
	}
	check, err := knownhosts.New(file)
	if err != nil {
		return nil, nil, fmt.Errorf("known_hosts: %w", err)
	}
	fake := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: h.Port}
	var algos []string
	var ke *knownhosts.KeyError
	if err := check(h.dialAddr(), fake, probeKey()); errors.As(err, &ke) {
		for _, k := range ke.Want {
			algos = append(algos, algorithmsFor(k.Key.Type())...)
		}
	}
	cb := func(hostname string, remote net.Addr, key gossh.PublicKey) error {
		err := check(hostname, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		if len(ke.Want) == 0 && b.o.AcceptNewHostKeys {
			return b.addKnownHost(h, key)
		}
		return &HostKeyError{Host: h, Key: key, KnownHosts: file, Known: ke.Want}
	}
	return cb, algos, nil
}

func algorithmsFor(keyType string) []string {
	if keyType == gossh.KeyAlgoRSA {
		return []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// addKnownHost appends h's key to known_hosts (trust on first use).
func (b *Backend) addKnownHost(h Host, key gossh.PublicKey) error {
	b.khMu.Lock()
	defer b.khMu.Unlock()
	f, err := os.OpenFile(b.o.KnownHosts, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("add host key to known_hosts: %w", err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(h.dialAddr())}, key) + "\n"
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("add host key to %s: %w", b.o.KnownHosts, err)
	}
	return f.Close()
}

// conn is one logged-in SSH connection to a host.
type conn struct {
	h    Host
	c    *gossh.Client
	stop func() bool
}

// dial logs in to h. Connecting and the SSH handshake together are bounded
// by ConnectTimeout; ctx ending closes the connection.
func (b *Backend) dial(ctx context.Context, h Host) (*conn, error) {
	fail := func(err error) (*conn, error) { return nil, fmt.Errorf("ssh %s: connect: %w", h, err) }
	cb, algos, err := b.hostKeyCheck(h)
	if err != nil {
		return fail(err)
	}
	cfg := &gossh.ClientConfig{
		User:              h.User,
		Auth:              []gossh.AuthMethod{gossh.PublicKeys(b.o.Login)},
		HostKeyCallback:   cb,
		HostKeyAlgorithms: algos,
		Timeout:           b.o.ConnectTimeout,
	}
	d := net.Dialer{Timeout: b.o.ConnectTimeout}
	raw, err := d.DialContext(ctx, "tcp", h.dialAddr())
	if err != nil {
		return fail(err)
	}
	_ = raw.SetDeadline(time.Now().Add(b.o.ConnectTimeout))
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	cc, chans, reqs, err := gossh.NewClientConn(raw, h.dialAddr(), cfg)
	if err != nil {
		stop()
		raw.Close()
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			return fail(fmt.Errorf("no SSH handshake within %s: %w", b.o.ConnectTimeout, err))
		case strings.Contains(err.Error(), "unable to authenticate"):
			return fail(fmt.Errorf("login as %s with key %s %s refused (is its public key in the host's ~%s/.ssh/authorized_keys? nodes.ssh_key chooses the key): %w",
				h.User, b.o.Login.PublicKey().Type(), gossh.FingerprintSHA256(b.o.Login.PublicKey()), h.User, err))
		}
		return fail(err)
	}
	_ = raw.SetDeadline(time.Time{})
	return &conn{h: h, c: gossh.NewClient(cc, chans, reqs), stop: stop}, nil
}

func (c *conn) Close() {
	c.stop()
	c.c.Close()
}

// run runs a POSIX sh script on the host with stdin and returns its
// standard output. A failure is named by step and ends with the script's
// standard error.
func (c *conn) run(step, script string, stdin io.Reader) (string, error) {
	s, err := c.c.NewSession()
	if err != nil {
		return "", fmt.Errorf("ssh %s: %s: open session: %w", c.h, step, err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdin, s.Stdout, s.Stderr = stdin, &out, &errb
	if err := s.Run("sh -c " + quote(script)); err != nil {
		if msg := strings.TrimSpace(errb.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return out.String(), fmt.Errorf("ssh %s: %s: %w", c.h, step, err)
	}
	return out.String(), nil
}

// quote makes s one word for sh.
func quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func itoa(i int) string { return strconv.Itoa(i) }
