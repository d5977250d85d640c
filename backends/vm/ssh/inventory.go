package ssh

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/distributive-flow/dflow/deploy"
	gossh "golang.org/x/crypto/ssh"
)

// Host is one inventory entry: who logs in where.
type Host struct {
	User string
	Addr string // host name or IP address: the node's address
	Port int    // the SSH port
}

// String is the entry as written in the inventory, with the defaults made
// explicit: user@host:port.
func (h Host) String() string {
	return h.User + "@" + h.dialAddr()
}

func (h Host) dialAddr() string { return net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)) }

// ParseHosts reads inventory entries ([user@]host[:port]); user defaults to
// defaultUser, port to 22. The same host and port twice is an error: two
// nodes on one host would fight over the agent's port.
func ParseHosts(entries []string, defaultUser string) ([]Host, error) {
	var hosts []Host
	seen := map[string]int{}
	for i, e := range entries {
		u, addr, port, err := deploy.SplitHost(e)
		if err != nil {
			return nil, fmt.Errorf("inventory entry %d: %w", i, err)
		}
		if u == "" {
			u = defaultUser
		}
		h := Host{User: u, Addr: addr, Port: port}
		if j, ok := seen[h.dialAddr()]; ok {
			return nil, fmt.Errorf("inventory entries %d and %d are the same host %s", j, i, h.dialAddr())
		}
		seen[h.dialAddr()] = i
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// ReadInventory reads an inventory file: one [user@]host[:port] per line;
// blank lines and everything after # are ignored. The n-th entry is node n.
func ReadInventory(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	var entries []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if _, _, _, err := deploy.SplitHost(text); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		entries = append(entries, text)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read inventory %s: %w", path, err)
	}
	return entries, nil
}

// DefaultUser is the user an entry without user@ logs in as, as with ssh:
// the local user.
func DefaultUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

// LoadKey reads an unencrypted private key file (OpenSSH or PEM format). Like
// ssh, it refuses a key that group or others may read.
func LoadKey(path string) (gossh.Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("ssh key %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("ssh key %s: permissions %#o are too open: the private key must be readable by its owner only (chmod 600)", path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	s, err := gossh.ParsePrivateKey(data)
	var pm *gossh.PassphraseMissingError
	if errors.As(err, &pm) {
		return nil, fmt.Errorf("ssh key %s is encrypted: dflow needs an unencrypted key (or leave nodes.ssh_key empty to use .dflow/id_ed25519)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("ssh key %s: %w", path, err)
	}
	return s, nil
}

// OptionsFromConfig builds the backend's options from dflow.yaml: the
// inventory (nodes.hosts or nodes.inventory), the login key (nodes.ssh_key,
// default signer, dflow's own key), nodes.known_hosts and
// nodes.host_key_check. signer also signs the agents' status calls.
func OptionsFromConfig(cfg deploy.Config, signer gossh.Signer) (Options, error) {
	entries, from := cfg.Nodes.Hosts, cfg.Where("nodes.hosts")
	if cfg.Nodes.Inventory != "" {
		path := cfg.ProjectPath(cfg.Nodes.Inventory)
		var err error
		if entries, err = ReadInventory(path); err != nil {
			return Options{}, fmt.Errorf("%s: nodes.inventory: %w", cfg.Where("nodes.inventory"), err)
		}
		from = path
	}
	if len(entries) == 0 {
		return Options{}, fmt.Errorf("%s: the ssh backend needs an inventory of hosts: set nodes.hosts (a list of [user@]host[:port]) or nodes.inventory (a file of them) in dflow.yaml", cfg.Where("backends.vm"))
	}
	hosts, err := ParseHosts(entries, DefaultUser())
	if err != nil {
		return Options{}, fmt.Errorf("%s: %w", from, err)
	}
	login := signer
	if cfg.Nodes.SSHKey != "" {
		if login, err = LoadKey(cfg.ProjectPath(cfg.Nodes.SSHKey)); err != nil {
			return Options{}, fmt.Errorf("%s: nodes.ssh_key: %w", cfg.Where("nodes.ssh_key"), err)
		}
	}
	kh := cfg.ProjectPath(cfg.Nodes.KnownHosts)
	if kh == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return Options{}, fmt.Errorf("nodes.known_hosts is empty and the home directory is unknown: %w", err)
		}
		kh = home + "/.ssh/known_hosts"
	}
	if _, err := os.Stat(kh); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Options{}, fmt.Errorf("%s: nodes.known_hosts: %w", cfg.Where("nodes.known_hosts"), err)
	}
	return Options{
		Hosts:             hosts,
		Login:             login,
		Signer:            signer,
		KnownHosts:        kh,
		AcceptNewHostKeys: cfg.Nodes.HostKeyCheck == deploy.HostKeysAcceptNew,
		AgentPort:         cfg.Nodes.AgentPort,
		RemoteDir:         ".dflow-node/" + cfg.Name,
	}, nil
}
