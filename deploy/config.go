package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FileName is the project file's name.
const FileName = "dflow.yaml"

// Config is a project's dflow.yaml with defaults applied and flags over it.
// It travels in workflow inputs as JSON (Sources does not: where a value came
// from only matters to the CLI's error messages).
type Config struct {
	Dir      string   `json:"dir" yaml:"-"`  // absolute project root (holds dflow.yaml)
	File     string   `json:"file" yaml:"-"` // absolute path of dflow.yaml, "" when none
	Name     string   `json:"name" yaml:"name"`
	Package  string   `json:"package" yaml:"package"`
	Target   []string `json:"target" yaml:"target"`
	Image    string   `json:"image" yaml:"image"`
	Keys     string   `json:"keys" yaml:"keys"`
	Backends Backends `json:"backends" yaml:"backends"`
	Nodes    Nodes    `json:"nodes" yaml:"nodes"`
	App      App      `json:"app" yaml:"app"`
	Deploy   Rollout  `json:"deploy" yaml:"deploy"`
	Verify   Verify   `json:"verify" yaml:"verify"`
	Repair   Repair   `json:"repair" yaml:"repair"`
	Temporal Temporal `json:"temporal" yaml:"temporal"`
	// Revision is the config revision in the Store that holds this
	// configuration whole (with app.env's values, which never travel in
	// workflow payloads: see App.Env); 0 before it is saved.
	Revision int64 `json:"revision,omitempty" yaml:"-"`

	sources map[string]string // dotted key -> "dflow.yaml:LINE" or "--flag"
}

// Backends name the implementation of each backend kind.
type Backends struct {
	VM            string `json:"vm" yaml:"vm"`
	Container     string `json:"container" yaml:"container"`
	Builder       string `json:"builder" yaml:"builder"`
	PackageReader string `json:"package_reader" yaml:"package_reader"`
	Store         string `json:"store" yaml:"store"`
}

// Nodes configure how nodes are made and reached.
type Nodes struct {
	AgentPort int `json:"agent_port" yaml:"agent_port"`
	Parallel  int `json:"parallel" yaml:"parallel"`
	// Max bounds the node count `set` accepts (default 64).
	Max int `json:"max" yaml:"max"`
	// MaxArtifact bounds the size of a bundle dflow copies to nodes
	// (default 4 GiB); agents have their own cap (dflow-agent --max-artifact).
	MaxArtifact Size `json:"max_artifact" yaml:"max_artifact"`
	// Hosts is the ssh backend's inventory: [user@]host[:port] per node, the
	// node's index is its position. Inventory names a file of the same
	// entries instead, one per line (relative to the project root).
	Hosts     []string `json:"hosts" yaml:"hosts"`
	Inventory string   `json:"inventory" yaml:"inventory"`
	// SSHKey is the private key the ssh backend logs in with; "" = dflow's
	// own key (.dflow/id_ed25519).
	SSHKey string `json:"ssh_key" yaml:"ssh_key"`
	// KnownHosts is the known_hosts file host keys are checked against; ""
	// = ~/.ssh/known_hosts. HostKeyCheck is HostKeysStrict (unknown host
	// keys are refused) or HostKeysAcceptNew (trust on first use).
	KnownHosts   string `json:"known_hosts" yaml:"known_hosts"`
	HostKeyCheck string `json:"host_key_check" yaml:"host_key_check"`
}

// Values of nodes.host_key_check.
const (
	HostKeysStrict    = "strict"     // a host whose key is not in known_hosts is refused
	HostKeysAcceptNew = "accept-new" // an unknown host's key is added to known_hosts (TOFU); a changed key is still refused
)

// App modes: how the agent puts a new version in front of users.
const (
	ModeHTTP    = "http"    // HTTP reverse proxy; readiness by HTTP probe
	ModeTCP     = "tcp"     // TCP forwarder; readiness by TCP connect
	ModeRestart = "restart" // stop the old version, then start the new: no zero-downtime claim
)

// Modes are the values app.mode takes.
var Modes = []string{ModeHTTP, ModeTCP, ModeRestart}

// App configures how a version runs on a node and how the agent switches to it.
type App struct {
	Port       int      `json:"port" yaml:"port"`             // public port the agent owns on every node
	Mode       string   `json:"mode" yaml:"mode"`             // http, tcp or restart
	Health     string   `json:"health" yaml:"health"`         // HTTP path probed for readiness
	Executable string   `json:"executable" yaml:"executable"` // which executable runs; "" = the first
	Args       []string `json:"args" yaml:"args"`
	// Env is KEY=VALUE. Its values never travel as JSON (not in workflow
	// payloads, not in the Store's release records): the Store keeps them
	// once, in the config revision (ConfigRevision.Env), and the worker
	// reads them from there when it starts a version.
	Env []string `json:"-" yaml:"env"`
	// Secrets name variables whose values are read where the app starts
	// (the worker) from SecretsFile, else from the worker's environment:
	// their values enter no workflow payload, Store record or log.
	Secrets []string `json:"secrets,omitempty" yaml:"secrets"`
	// SecretsFile holds KEY=VALUE lines for Secrets (mode 0600; default
	// .dflow/secrets.env).
	SecretsFile  string   `json:"secrets_file,omitempty" yaml:"secrets_file"`
	ReadyProbes  int      `json:"ready_probes" yaml:"ready_probes"`
	ReadyTimeout Duration `json:"ready_timeout" yaml:"ready_timeout"`
	DrainTimeout Duration `json:"drain_timeout" yaml:"drain_timeout"`
	StopGrace    Duration `json:"stop_grace" yaml:"stop_grace"`
}

// ProxyMode is how the agent's public port and probes work: tcp for tcp,
// http otherwise (restart stops the old version before it starts the new
// one, but proxies and probes as http does).
func (a App) ProxyMode() string {
	if a.Mode == ModeTCP {
		return ModeTCP
	}
	return ModeHTTP
}

// Rollout configures how a deploy moves through the nodes.
type Rollout struct {
	// Parallel is how many nodes switch to the new version at once.
	Parallel int `json:"parallel" yaml:"parallel"`
	// StuckTimeout is how long a rollout paused on a stuck node step (one
	// that exhausted its retries) waits for an operator's decision
	// (`dflow deploy retry | skip-node INDEX | abort`) before StuckAction.
	StuckTimeout Duration `json:"stuck_timeout" yaml:"stuck_timeout"`
	// StuckAction is what an unattended stuck rollout does when
	// StuckTimeout passes: StuckAbort (undo what switched) or StuckSkip
	// (leave the node out and go on).
	StuckAction string `json:"stuck_action" yaml:"stuck_action"`
}

// Rollout.StuckAction values.
const (
	StuckAbort = "abort"
	StuckSkip  = "skip-node"
)

// Repair configures repair (and its watch), chaos-monkey and cycle: how
// much of the cluster they may take out of service at once.
type Repair struct {
	// MaxUnavailable bounds how many nodes repair, chaos-monkey and cycle
	// take out of service at once: a whole number of nodes ("1", the
	// default) or a percentage of the desired count ("34%", rounded down,
	// at least 1).
	MaxUnavailable string `json:"max_unavailable" yaml:"max_unavailable"`
	// RollbackOnVersionFault lets `repair --watch` roll back (once) when the
	// current release fails verify on a majority of its nodes.
	RollbackOnVersionFault bool `json:"rollback_on_version_fault" yaml:"rollback_on_version_fault"`
}

// Unavailable is how many of count nodes may be out of service at once
// (see MaxUnavailable): at least 1, at most count.
func (r Repair) Unavailable(count int) int {
	n, _ := parseUnavailable(r.MaxUnavailable, count)
	return min(max(n, 1), max(count, 1))
}

// parseUnavailable reads a max_unavailable value: "N" or "P%" of count.
func parseUnavailable(s string, count int) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 1, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > 100 {
			return 0, fmt.Errorf("%q: want a percentage from 1%% to 100%%", s)
		}
		return count * n / 100, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q: want a whole number of nodes (at least 1) or a percentage such as 34%%", s)
	}
	return n, nil
}

// Verify configures verify: a node's (health, threshold).
type Verify struct {
	// Program is a verify program (relative to the project root): a Haskell
	// source compiled once, or any executable; "" uses the built-in probe.
	Program string `json:"program" yaml:"program"`
	// Probes, Timeout and Threshold configure the built-in probe: health is
	// the percentage of Probes requests that succeed within Timeout, and
	// the node is healthy when it is at least Threshold.
	Probes    int      `json:"probes" yaml:"probes"`
	Timeout   Duration `json:"timeout" yaml:"timeout"`
	Threshold int      `json:"threshold" yaml:"threshold"`
}

// Duration is a time.Duration that reads and prints as "30s".
type Duration time.Duration

// D is the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// Temporal configures the control plane.
type Temporal struct {
	Address   string `json:"address" yaml:"address"`
	Namespace string `json:"namespace" yaml:"namespace"`
	TaskQueue string `json:"task_queue" yaml:"task_queue"`
	// UI is where the embedded control plane serves the Web UI, and only
	// the UI: its frontend and internal services stay on 127.0.0.1.
	UI string `json:"ui" yaml:"ui"`
	// Frontend, when set, also serves the embedded control plane's Temporal
	// frontend on this HOST:PORT. It has no authentication: whoever reaches
	// it can start, signal, reset and terminate any workflow. "" (the
	// default): 127.0.0.1 only.
	Frontend string `json:"frontend" yaml:"frontend"`
}

// ConfigError is a bad value in dflow.yaml or a flag, with where it is.
type ConfigError struct {
	File string // file name or flag/env source
	Line int    // 0 for flags and whole-file problems
	Key  string
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Targets dflow can build and ship.
var Targets = []string{"executable", "library", "source"}

// schema lists every key: its kind ("string", "int", "list", "map").
var schema = map[string]string{
	"name": "string", "package": "string", "target": "list", "image": "string", "keys": "string",
	"backends": "map", "backends.vm": "string", "backends.container": "string", "backends.builder": "string",
	"backends.package_reader": "string", "backends.store": "string",
	"nodes": "map", "nodes.agent_port": "int", "nodes.parallel": "int", "nodes.max": "int", "nodes.max_artifact": "size",
	"nodes.hosts": "list", "nodes.inventory": "string", "nodes.ssh_key": "string",
	"nodes.known_hosts": "string", "nodes.host_key_check": "string",
	"app": "map", "app.port": "int", "app.mode": "string", "app.health": "string", "app.executable": "string",
	"app.args": "list", "app.env": "list", "app.secrets": "list", "app.secrets_file": "string", "app.ready_probes": "int", "app.ready_timeout": "duration",
	"app.drain_timeout": "duration", "app.stop_grace": "duration",
	"deploy": "map", "deploy.parallel": "int", "deploy.stuck_timeout": "duration", "deploy.stuck_action": "string",
	"repair": "map", "repair.max_unavailable": "string", "repair.rollback_on_version_fault": "bool",
	"verify": "map", "verify.program": "string", "verify.probes": "int", "verify.timeout": "duration",
	"verify.threshold": "int",
	"temporal":         "map", "temporal.address": "string", "temporal.namespace": "string",
	"temporal.task_queue": "string", "temporal.ui": "string", "temporal.frontend": "string",
}

// Default returns the defaults for a project rooted at dir.
func Default(dir string) Config {
	return Config{
		Dir:    dir,
		Name:   sanitizeName(filepath.Base(dir)),
		Target: []string{"executable"},
		Backends: Backends{
			VM: "local", Container: "process", Builder: "cabal", PackageReader: "cabal", Store: "embedded",
		},
		Nodes: Nodes{AgentPort: 7077, Parallel: 4, Max: DefaultMaxNodes, MaxArtifact: DefaultMaxArtifact, HostKeyCheck: HostKeysStrict},
		App: App{
			Port: 8080, Mode: ModeHTTP, Health: "/health", ReadyProbes: 3,
			ReadyTimeout: Duration(30 * time.Second), DrainTimeout: Duration(30 * time.Second), StopGrace: Duration(10 * time.Second),
		},
		Deploy:   Rollout{Parallel: 1, StuckTimeout: Duration(15 * time.Minute), StuckAction: StuckAbort},
		Repair:   Repair{MaxUnavailable: "1"},
		Verify:   Verify{Probes: 5, Timeout: Duration(time.Second), Threshold: 100},
		Temporal: Temporal{Namespace: "default", TaskQueue: "dflow", UI: "127.0.0.1:8233"},
	}
}

func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.TrimLeft(b.String(), "-._")
	if out == "" {
		out = "app"
	}
	if len(out) > 63 {
		out = out[:63]
	}
	return out
}

// Find looks for dflow.yaml in start and its parents and returns its path,
// or "" when there is none.
func Find(start string) (string, error) {
	dir, err := filepath.Abs(start)
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, FileName)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", nil
		}
		dir = parent
	}
}

// Load reads the dflow.yaml at path, applies defaults and validates. With
// path == "" it returns the validated defaults for dir.
func Load(path, dir string) (Config, error) {
	if path == "" {
		c := Default(dir)
		return c, c.Validate()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Config{}, err
	}
	c, err := Parse(abs, data, dir)
	if err != nil {
		return Config{}, err
	}
	return c, nil
}

// Parse is Load for bytes; name is the file's path, used in errors.
func Parse(name string, data []byte, dir string) (Config, error) {
	c := Default(dir)
	c.File = name
	c.sources = map[string]string{}
	short := filepath.Base(name)
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, yamlError(short, err)
	}
	if len(doc.Content) == 0 {
		return c, c.Validate() // empty, or only comments
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return c, c.Validate()
	}
	if root.Kind != yaml.MappingNode {
		return Config{}, &ConfigError{File: short, Line: root.Line, Msg: "want a mapping of keys (name: ..., backends: ...) at the top level"}
	}
	var errs []error
	c.walk(short, "", root, &errs)
	if len(errs) > 0 {
		return Config{}, errs[0]
	}
	return c, c.Validate()
}

// Problems is every problem of the dflow.yaml at path at once, in the
// file's order (the names and types of its keys, then their values), each
// a *ConfigError with file:line where there is one. None: it is valid.
func Problems(path, dir string) []error {
	data, err := os.ReadFile(path)
	if err != nil {
		return []error{fmt.Errorf("read %s: %w", path, err)}
	}
	c := Default(dir)
	c.File, c.sources = path, map[string]string{}
	short := filepath.Base(path)
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return []error{yamlError(short, err)}
	}
	var errs []error
	if len(doc.Content) > 0 {
		switch root := doc.Content[0]; {
		case root.Kind == yaml.MappingNode:
			c.walk(short, "", root, &errs)
		case root.Kind != yaml.ScalarNode || root.Tag != "!!null":
			return []error{&ConfigError{File: short, Line: root.Line, Msg: "want a mapping of keys (name: ..., backends: ...) at the top level"}}
		}
	}
	return append(errs, c.problems()...)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlError(file string, err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &ConfigError{File: file, Line: line, Msg: "not valid YAML: " + m[2]}
	}
	return &ConfigError{File: file, Msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// walk sets every key of mapping m (under prefix) on c, checking names and
// types; it adds every problem to errs (a bad value keeps the default) and
// goes on with the next key.
func (c *Config) walk(file, prefix string, m *yaml.Node, errs *[]error) {
	seen := map[string]bool{}
keys:
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := k.Value
		if prefix != "" {
			key = prefix + "." + k.Value
		}
		kind, ok := schema[key]
		if !ok {
			*errs = append(*errs, &ConfigError{File: file, Line: k.Line, Key: key, Msg: unknownKey(key)})
			continue keys
		}
		if seen[key] {
			*errs = append(*errs, &ConfigError{File: file, Line: k.Line, Key: key, Msg: fmt.Sprintf("%s is given twice", key)})
			continue keys
		}
		seen[key] = true
		where := fmt.Sprintf("%s:%d", file, k.Line)
		bad := func(format string, args ...any) error {
			return &ConfigError{File: file, Line: v.Line, Key: key, Msg: fmt.Sprintf("%s: ", key) + fmt.Sprintf(format, args...)}
		}
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			continue // "key:" with no value keeps the default
		}
		switch kind {
		case "map":
			if v.Kind != yaml.MappingNode {
				*errs = append(*errs, bad("want a mapping of keys, got %s", describe(v)))
				continue keys
			}
			c.walk(file, key, v, errs)
			continue
		case "list":
			var items []string
			switch v.Kind {
			case yaml.SequenceNode:
				for _, it := range v.Content {
					if it.Kind != yaml.ScalarNode {
						*errs = append(*errs, bad("want a list of words, got %s", describe(it)))
						continue keys
					}
					items = append(items, it.Value)
				}
			case yaml.ScalarNode:
				items = []string{v.Value}
			default:
				*errs = append(*errs, bad("want a list, got %s", describe(v)))
				continue keys
			}
			*c.listField(key) = items
		case "size":
			if v.Kind != yaml.ScalarNode {
				*errs = append(*errs, bad("want a size such as 4GiB, got %s", describe(v)))
				continue keys
			}
			n, err := ParseSize(v.Value)
			if err != nil {
				*errs = append(*errs, bad("%v", err))
				continue keys
			}
			*c.sizeField(key) = n
		case "duration":
			if v.Kind != yaml.ScalarNode {
				*errs = append(*errs, bad("want a duration such as 30s, got %s", describe(v)))
				continue keys
			}
			d, err := parseDuration(v.Value)
			if err != nil {
				*errs = append(*errs, bad("%v", err))
				continue keys
			}
			*c.durationField(key) = d
		case "int":
			if v.Kind != yaml.ScalarNode {
				*errs = append(*errs, bad("want a number, got %s", describe(v)))
				continue keys
			}
			n, err := strconv.Atoi(v.Value)
			if err != nil {
				*errs = append(*errs, bad("want a whole number, got %q", v.Value))
				continue keys
			}
			c.setInt(key, n)
		case "bool":
			b, err := parseBool(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil {
				*errs = append(*errs, bad("want true or false, got %s", describe(v)))
				continue keys
			}
			*c.boolField(key) = b
		case "string":
			if v.Kind != yaml.ScalarNode {
				*errs = append(*errs, bad("want a single value, got %s", describe(v)))
				continue keys
			}
			*c.stringField(key) = v.Value
		}
		c.sources[key] = where
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return fmt.Sprintf("%q", n.Value)
}

// unknownKey explains an unknown key and suggests the known one meant: a key
// of the same name elsewhere (vm-backend -> backends.vm), else the closest
// key at the same level.
func unknownKey(key string) string {
	msg := fmt.Sprintf("unknown key %q", key)
	if best := suggest(key); best != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", best)
	}
	return msg + "; docs/dflow-yaml.md lists every key"
}

func suggest(key string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	parent, leaf := "", key
	if i := strings.LastIndex(key, "."); i >= 0 {
		parent, leaf = key[:i], key[i+1:]
	}
	for _, k := range schemaKeys() {
		kp, kl := "", k
		if i := strings.LastIndex(k, "."); i >= 0 {
			kp, kl = k[:i], k[i+1:]
		}
		n := norm(leaf)
		// The same name in another place, with or without its kind as a suffix.
		if kp != parent && (n == norm(kl) || kp == "backends" && (n == norm(kl)+"backend" || n == norm(kl)+"backends")) {
			return k
		}
	}
	best, bestD := "", 4
	for _, k := range schemaKeys() {
		kp, kl := "", k
		if i := strings.LastIndex(k, "."); i >= 0 {
			kp, kl = k[:i], k[i+1:]
		}
		if kp != parent {
			continue
		}
		d := editDistance(norm(leaf), norm(kl))
		if strings.HasPrefix(norm(leaf), norm(kl)) || strings.HasPrefix(norm(kl), norm(leaf)) {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func (c *Config) stringField(key string) *string {
	switch key {
	case "name":
		return &c.Name
	case "deploy.stuck_action":
		return &c.Deploy.StuckAction
	case "repair.max_unavailable":
		return &c.Repair.MaxUnavailable
	case "package":
		return &c.Package
	case "image":
		return &c.Image
	case "keys":
		return &c.Keys
	case "backends.vm":
		return &c.Backends.VM
	case "backends.container":
		return &c.Backends.Container
	case "backends.builder":
		return &c.Backends.Builder
	case "backends.package_reader":
		return &c.Backends.PackageReader
	case "backends.store":
		return &c.Backends.Store
	case "temporal.address":
		return &c.Temporal.Address
	case "temporal.namespace":
		return &c.Temporal.Namespace
	case "temporal.task_queue":
		return &c.Temporal.TaskQueue
	case "temporal.ui":
		return &c.Temporal.UI
	case "temporal.frontend":
		return &c.Temporal.Frontend
	case "app.mode":
		return &c.App.Mode
	case "app.health":
		return &c.App.Health
	case "app.executable":
		return &c.App.Executable
	case "app.secrets_file":
		return &c.App.SecretsFile
	case "verify.program":
		return &c.Verify.Program
	case "nodes.inventory":
		return &c.Nodes.Inventory
	case "nodes.ssh_key":
		return &c.Nodes.SSHKey
	case "nodes.known_hosts":
		return &c.Nodes.KnownHosts
	case "nodes.host_key_check":
		return &c.Nodes.HostKeyCheck
	}
	return nil
}

func (c *Config) intField(key string) *int {
	switch key {
	case "nodes.agent_port":
		return &c.Nodes.AgentPort
	case "nodes.parallel":
		return &c.Nodes.Parallel
	case "nodes.max":
		return &c.Nodes.Max
	case "app.port":
		return &c.App.Port
	case "app.ready_probes":
		return &c.App.ReadyProbes
	case "deploy.parallel":
		return &c.Deploy.Parallel
	case "verify.probes":
		return &c.Verify.Probes
	case "verify.threshold":
		return &c.Verify.Threshold
	}
	return nil
}

func (c *Config) setInt(key string, n int) { *c.intField(key) = n }

func (c *Config) boolField(key string) *bool {
	switch key {
	case "repair.rollback_on_version_fault":
		return &c.Repair.RollbackOnVersionFault
	}
	return nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on":
		return true, nil
	case "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q: want true or false", s)
}

func (c *Config) listField(key string) *[]string {
	switch key {
	case "target":
		return &c.Target
	case "app.args":
		return &c.App.Args
	case "app.env":
		return &c.App.Env
	case "app.secrets":
		return &c.App.Secrets
	case "nodes.hosts":
		return &c.Nodes.Hosts
	}
	return nil
}

func (c *Config) sizeField(key string) *Size {
	switch key {
	case "nodes.max_artifact":
		return &c.Nodes.MaxArtifact
	}
	return nil
}

func (c *Config) durationField(key string) *Duration {
	switch key {
	case "app.ready_timeout":
		return &c.App.ReadyTimeout
	case "app.drain_timeout":
		return &c.App.DrainTimeout
	case "app.stop_grace":
		return &c.App.StopGrace
	case "verify.timeout":
		return &c.Verify.Timeout
	case "deploy.stuck_timeout":
		return &c.Deploy.StuckTimeout
	}
	return nil
}

func parseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (want e.g. 500ms, 30s, 2m)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return Duration(d), nil
}

// Get returns the value at a dotted key as a string ("" for unknown keys).
func (c Config) Get(key string) string {
	switch schema[key] {
	case "string":
		return *c.stringField(key)
	case "int":
		return strconv.Itoa(*c.intField(key))
	case "list":
		return strings.Join(*c.listField(key), ",")
	case "duration":
		return c.durationField(key).String()
	case "size":
		return c.sizeField(key).String()
	case "bool":
		return strconv.FormatBool(*c.boolField(key))
	}
	return ""
}

// Set overrides the value at a dotted key with a value from source (a flag
// or environment variable name), validates it, and remembers the source.
func (c *Config) Set(key, value, source string) error {
	kind, ok := schema[key]
	if !ok || kind == "map" {
		return &ConfigError{File: source, Key: key, Msg: unknownKey(key)}
	}
	old := *c
	switch kind {
	case "string":
		*c.stringField(key) = value
	case "int":
		n, err := strconv.Atoi(value)
		if err != nil {
			return &ConfigError{File: source, Key: key, Msg: fmt.Sprintf("want a whole number, got %q", value)}
		}
		c.setInt(key, n)
	case "list":
		*c.listField(key) = strings.Split(value, ",")
	case "duration":
		d, err := parseDuration(value)
		if err != nil {
			return &ConfigError{File: source, Key: key, Msg: err.Error()}
		}
		*c.durationField(key) = d
	case "size":
		n, err := ParseSize(value)
		if err != nil {
			return &ConfigError{File: source, Key: key, Msg: err.Error()}
		}
		*c.sizeField(key) = n
	case "bool":
		b, err := parseBool(value)
		if err != nil {
			return &ConfigError{File: source, Key: key, Msg: err.Error()}
		}
		*c.boolField(key) = b
	}
	if c.sources == nil {
		c.sources = map[string]string{}
	}
	prevSrc, hadSrc := c.sources[key]
	c.sources[key] = source
	if err := c.Validate(); err != nil {
		sources := c.sources
		*c = old
		c.sources = sources
		if hadSrc {
			c.sources[key] = prevSrc
		} else {
			delete(c.sources, key)
		}
		return err
	}
	return nil
}

// Where tells where the value at a dotted key came from: "dflow.yaml:12",
// "--vm-backend", or "default".
func (c Config) Where(key string) string {
	if s, ok := c.sources[key]; ok {
		return s
	}
	return "default"
}

// Setting is one key of a configuration: its value and where the value
// came from ("dflow.yaml:12", "--vm-backend", "$TEMPORAL_ADDRESS",
// "default").
type Setting struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

// Settings lists every key of c (not the sections), sorted, with its value
// and where it came from: `dflow config show`.
func (c Config) Settings() []Setting {
	var out []Setting
	for key, kind := range schema {
		if kind != "map" {
			out = append(out, Setting{Key: key, Value: c.Get(key), Source: c.Where(key)})
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Key < out[b].Key })
	return out
}

// BackendKeys are the keys that name backends.
func (c Config) BackendKeys() []string {
	return []string{"backends.vm", "backends.container", "backends.builder", "backends.package_reader", "backends.store"}
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Validate checks every value; errors say where the value came from.
func (c Config) Validate() error {
	if p := c.problems(); len(p) > 0 {
		return p[0]
	}
	return nil
}

// problems is every problem of c's values, in the order of Validate's
// checks.
func (c Config) problems() []error {
	var errs []error
	bad := func(key, format string, args ...any) error {
		src := c.Where(key)
		e := &ConfigError{File: src, Key: key, Msg: key + ": " + fmt.Sprintf(format, args...)}
		if i := strings.LastIndex(src, ":"); i > 0 {
			if n, err := strconv.Atoi(src[i+1:]); err == nil {
				e.File, e.Line = src[:i], n
			}
		}
		return e
	}
	if !namePattern.MatchString(c.Name) {
		errs = append(errs, bad("name", "%q is not a cluster name: lowercase letters, digits, '.', '_', '-', starting with a letter or digit, at most 63", c.Name))
	}
	if len(c.Target) == 0 {
		errs = append(errs, bad("target", "name at least one of %s", strings.Join(Targets, ", ")))
	}
	seen := map[string]bool{}
	for _, t := range c.Target {
		if !contains(Targets, t) {
			errs = append(errs, bad("target", "unknown target %q (want any of %s)", t, strings.Join(Targets, ", ")))
		}
		if seen[t] {
			errs = append(errs, bad("target", "%q is listed twice", t))
		}
		seen[t] = true
	}
	for _, key := range c.BackendKeys() {
		v := c.Get(key)
		if v == "" {
			errs = append(errs, bad(key, "must not be empty"))
		}
		if strings.ContainsAny(v, " \t\n") {
			errs = append(errs, bad(key, "%q contains white space", v))
		}
	}
	if p := c.Nodes.AgentPort; p < 1 || p > 65535 {
		errs = append(errs, bad("nodes.agent_port", "%d is not a port (1-65535)", p))
	}
	if p := c.Nodes.Parallel; p < 1 || p > 64 {
		errs = append(errs, bad("nodes.parallel", "%d is out of range (1-64)", p))
	}
	if len(c.Nodes.Hosts) > 0 && c.Nodes.Inventory != "" {
		errs = append(errs, bad("nodes.inventory", "nodes.hosts is given too (%s): name the hosts in one place", c.Where("nodes.hosts")))
	}
	seenHost := map[string]bool{}
	for _, h := range c.Nodes.Hosts {
		if _, _, _, err := SplitHost(h); err != nil {
			errs = append(errs, bad("nodes.hosts", "%v", err))
		}
		if seenHost[h] {
			errs = append(errs, bad("nodes.hosts", "%q is listed twice", h))
		}
		seenHost[h] = true
	}
	if !contains([]string{HostKeysStrict, HostKeysAcceptNew}, c.Nodes.HostKeyCheck) {
		errs = append(errs, bad("nodes.host_key_check", "unknown value %q (want %s or %s)", c.Nodes.HostKeyCheck, HostKeysStrict, HostKeysAcceptNew))
	}
	if p := c.App.Port; p < 1 || p > 65535 {
		errs = append(errs, bad("app.port", "%d is not a port (1-65535)", p))
	}
	if c.App.Port == c.Nodes.AgentPort {
		errs = append(errs, bad("app.port", "%d is also nodes.agent_port: the app and the agent need ports of their own", c.App.Port))
	}
	if !contains(Modes, c.App.Mode) {
		errs = append(errs, bad("app.mode", "unknown mode %q (want any of %s)", c.App.Mode, strings.Join(Modes, ", ")))
	}
	if !strings.HasPrefix(c.App.Health, "/") {
		errs = append(errs, bad("app.health", "%q is not an absolute URL path (want e.g. /health)", c.App.Health))
	}
	if n := c.Nodes.Max; n < 1 || n > MaxNodesLimit {
		errs = append(errs, bad("nodes.max", "%d is out of range (1-%d)", n, MaxNodesLimit))
	}
	if c.Nodes.MaxArtifact < 1<<20 {
		errs = append(errs, bad("nodes.max_artifact", "%s is too small (at least 1MiB)", c.Nodes.MaxArtifact))
	}
	envKeys := map[string]bool{}
	for _, e := range c.App.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || !envName.MatchString(k) {
			// Never quote the value: it may be a secret.
			errs = append(errs, bad("app.env", "%q is not KEY=VALUE with KEY a variable name", k))
		}
		if reservedEnv(k) {
			errs = append(errs, bad("app.env", "%s is set by the agent (PORT, HOST, DFLOW_*): choose another name", k))
		}
		envKeys[k] = true
	}
	seenSecret := map[string]bool{}
	for _, k := range c.App.Secrets {
		switch {
		case !envName.MatchString(k):
			errs = append(errs, bad("app.secrets", "%q is not a variable name (letters, digits, _; not starting with a digit)", k))
		case reservedEnv(k):
			errs = append(errs, bad("app.secrets", "%s is set by the agent (PORT, HOST, DFLOW_*): choose another name", k))
		case envKeys[k]:
			errs = append(errs, bad("app.secrets", "%s is in app.env too (%s): a secret's value belongs in app.secrets_file, not in dflow.yaml", k, c.Where("app.env")))
		case seenSecret[k]:
			errs = append(errs, bad("app.secrets", "%s is listed twice", k))
		}
		seenSecret[k] = true
	}
	if n := c.App.ReadyProbes; n < 1 || n > 100 {
		errs = append(errs, bad("app.ready_probes", "%d is out of range (1-100)", n))
	}
	if c.App.ReadyTimeout <= 0 {
		errs = append(errs, bad("app.ready_timeout", "must be longer than 0s"))
	}
	if n := c.Verify.Probes; n < 1 || n > 1000 {
		errs = append(errs, bad("verify.probes", "%d is out of range (1-1000)", n))
	}
	if c.Verify.Timeout <= 0 {
		errs = append(errs, bad("verify.timeout", "must be longer than 0s"))
	}
	if t := c.Verify.Threshold; t < 0 || t > 100 {
		errs = append(errs, bad("verify.threshold", "%d is out of range (0-100: a percentage of good probes)", t))
	}
	if p := c.Deploy.Parallel; p < 1 || p > 1000 {
		errs = append(errs, bad("deploy.parallel", "%d is out of range (1-1000)", p))
	}
	if c.Deploy.StuckTimeout <= 0 {
		errs = append(errs, bad("deploy.stuck_timeout", "must be longer than 0s"))
	}
	if a := c.Deploy.StuckAction; a != StuckAbort && a != StuckSkip {
		errs = append(errs, bad("deploy.stuck_action", "%q: want %s (undo what switched) or %s (leave the stuck node out and go on)", a, StuckAbort, StuckSkip))
	}
	if _, err := parseUnavailable(c.Repair.MaxUnavailable, 1); err != nil {
		errs = append(errs, bad("repair.max_unavailable", "%v", err))
	}
	if a := c.Temporal.Address; a != "" {
		if err := hostPort(a); err != nil {
			errs = append(errs, bad("temporal.address", "%q: %v", a, err))
		}
	}
	if err := hostPort(c.Temporal.UI); err != nil {
		errs = append(errs, bad("temporal.ui", "%q: %v", c.Temporal.UI, err))
	}
	if f := c.Temporal.Frontend; f != "" {
		if err := hostPort(f); err != nil {
			errs = append(errs, bad("temporal.frontend", "%q: %v", f, err))
		}
	}
	if c.Temporal.Namespace == "" {
		errs = append(errs, bad("temporal.namespace", "must not be empty"))
	}
	if c.Temporal.TaskQueue == "" {
		errs = append(errs, bad("temporal.task_queue", "must not be empty"))
	}
	return errs
}

func hostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want HOST:PORT")
	}
	if host == "" {
		return errors.New("want HOST:PORT (the host is missing)")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// SplitHost reads an inventory entry [user@]host[:port] ("[::1]:22" for an
// IPv6 address with a port). user is "" and port 22 when not given.
func SplitHost(s string) (user, host string, port int, err error) {
	if s == "" || strings.ContainsAny(s, " \t\n/") {
		return "", "", 0, fmt.Errorf("%q is not a host: want [user@]host[:port]", s)
	}
	rest := s
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		user, rest = rest[:i], rest[i+1:]
		if user == "" {
			return "", "", 0, fmt.Errorf("%q: the user before @ is empty", s)
		}
	}
	host, port = rest, 22
	if h, p, e := net.SplitHostPort(rest); e == nil {
		n, e := strconv.Atoi(p)
		if e != nil || n < 1 || n > 65535 {
			return "", "", 0, fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, p)
		}
		host, port = h, n
	} else if strings.Count(rest, ":") == 1 {
		return "", "", 0, fmt.Errorf("%q: %v", s, e)
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("%q: the host is missing", s)
	}
	return user, host, port, nil
}

// ProjectPath resolves a path from dflow.yaml: "~/" is the home directory,
// a relative path is relative to the project root; "" stays "".
func (c Config) ProjectPath(p string) string {
	if p == "" {
		return ""
	}
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, p[2:])
		}
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(c.Dir, p)
	}
	return p
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Bounds of nodes.max and nodes.max_artifact.
const (
	DefaultMaxNodes    = 64
	MaxNodesLimit      = 10000
	DefaultMaxArtifact = Size(4 << 30)
)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedEnv tells whether the agent sets variable k for every app.
func reservedEnv(k string) bool {
	return k == "PORT" || k == "HOST" || strings.HasPrefix(k, "DFLOW_")
}

// StateDir is where dflow keeps this project's state: Dir/.dflow.
func (c Config) StateDir() string { return filepath.Join(c.Dir, ".dflow") }

// PackagePath is the package file to read (package: resolved against Dir),
// or Dir itself when package: is empty (the reader then finds the one
// package file there).
func (c Config) PackagePath() string {
	if c.Package == "" {
		return c.Dir
	}
	if filepath.IsAbs(c.Package) {
		return c.Package
	}
	return filepath.Join(c.Dir, c.Package)
}

// KeysPath is Keys resolved against Dir ("~/" expanded), "" when unset.
func (c Config) KeysPath() string {
	k := c.Keys
	if k == "" {
		return ""
	}
	if strings.HasPrefix(k, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			k = filepath.Join(home, k[2:])
		}
	}
	if !filepath.IsAbs(k) {
		k = filepath.Join(c.Dir, k)
	}
	return k
}

// Keys of the schema, sorted (for docs and tests).
func schemaKeys() []string {
	var out []string
	for k := range schema {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
