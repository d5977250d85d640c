package vagrant

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// LabelMachineDir labels a docker provider's container with its node's
// directory on this machine.
const LabelMachineDir = "dflow.vagrant-dir"

// machine is what a node's Vagrantfile says.
type machine struct {
	Provider  string
	Image     string   // docker image, or box
	Binary    string   // local dflow executable
	Dir       string   // the node's directory on this machine
	Address   string   // loopback address the ports are forwarded from
	Ports     []int    // guest ports forwarded to the same port on Address (the agent's first)
	Agent     []string // agent command: BinaryToken, then arguments
	AgentEnv  []string // KEY=VALUE
	Index     int
	NodeID    string
	AgentPort int
}

// Where the agent's files are inside the machine.
const (
	guestBinary = "/opt/dflow/dflow"
	guestKeys   = "/opt/dflow/authorized_keys"
	guestDir    = "/var/lib/dflow"
)

// ruby quotes s as a Ruby string literal: a JSON string is one, once "#"
// cannot start an interpolation.
func ruby(s string) string {
	b, _ := json.Marshal(s)
	return strings.ReplaceAll(string(b), "#", `\#`)
}

func rubyList(ss []string) string {
	var q []string
	for _, s := range ss {
		q = append(q, ruby(s))
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// agentArgv is the agent's command line inside the machine.
func (m machine) agentArgv() []string {
	var argv []string
	for _, w := range m.Agent {
		if w == BinaryToken {
			w = guestBinary
		}
		argv = append(argv, w)
	}
	return append(argv, "--dir", guestDir,
		"--listen", net.JoinHostPort("0.0.0.0", strconv.Itoa(m.AgentPort)),
		"--index", strconv.Itoa(m.Index), "--node-id", m.NodeID, "--keys", guestKeys)
}

// vagrantfile renders the node's Vagrantfile.
func (m machine) vagrantfile() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by dflow for node %d (%s); dflow writes it again on create: do not edit.\n", m.Index, m.NodeID)
	b.WriteString("Vagrant.configure(\"2\") do |config|\n")
	b.WriteString("  config.vm.synced_folder \".\", \"/vagrant\", disabled: true\n")
	if m.Provider == "docker" {
		var ports, env []string
		for _, p := range m.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d:%d", m.Address, p, p))
		}
		for _, e := range m.AgentEnv {
			k, v, _ := strings.Cut(e, "=")
			env = append(env, ruby(k)+" => "+ruby(v))
		}
		b.WriteString("  config.vm.provider \"docker\" do |d|\n")
		fmt.Fprintf(&b, "    d.image = %s\n", ruby(m.Image))
		b.WriteString("    d.has_ssh = false\n")
		b.WriteString("    d.remains_running = true\n")
		fmt.Fprintf(&b, "    d.volumes = %s\n", rubyList([]string{
			m.Binary + ":" + guestBinary + ":ro",
			m.Dir + "/authorized_keys:" + guestKeys + ":ro",
			m.Dir + "/state:" + guestDir,
		}))
		// The ports go to docker run as they are: Vagrant 2.3's docker
		// provider counts a host port bound on any address as taken, so
		// d.ports would refuse node 1's 127.0.0.3:7077 next to node 0's
		// 127.0.0.2:7077.
		var args []string
		for _, p := range ports {
			args = append(args, "-p", p)
		}
		// The label finds the container when vagrant lost track of it (an
		// up cut short before vagrant recorded the container's ID).
		args = append(args, "--label", LabelMachineDir+"="+m.Dir)
		fmt.Fprintf(&b, "    d.create_args = %s\n", rubyList(args))
		if len(env) > 0 {
			fmt.Fprintf(&b, "    d.env = { %s }\n", strings.Join(env, ", "))
		}
		fmt.Fprintf(&b, "    d.cmd = %s\n", rubyList(m.agentArgv()))
		b.WriteString("  end\n")
	} else {
		fmt.Fprintf(&b, "  config.vm.box = %s\n", ruby(m.Image))
		for _, p := range m.Ports {
			fmt.Fprintf(&b, "  config.vm.network \"forwarded_port\", guest: %d, host: %d, host_ip: %s\n", p, p, ruby(m.Address))
		}
		fmt.Fprintf(&b, "  config.vm.provision \"dflow-binary\", type: \"file\", source: %s, destination: \"/tmp/dflow.upload\"\n", ruby(m.Binary))
		b.WriteString("  config.vm.provision \"dflow-keys\", type: \"file\", source: \"authorized_keys\", destination: \"/tmp/dflow.keys\", run: \"always\"\n")
		fmt.Fprintf(&b, "  config.vm.provision \"dflow-agent\", type: \"shell\", run: \"always\", inline: %s\n", ruby(m.startScript()))
	}
	b.WriteString("end\n")
	return b.String()
}

// startScript (VM providers) puts dflow and the keys in place and starts the
// agent detached, after stopping one that still runs.
func (m machine) startScript() string {
	var cmd []string
	for _, w := range m.agentArgv() {
		cmd = append(cmd, shellQuote(w))
	}
	env := ""
	if len(m.AgentEnv) > 0 {
		var q []string
		for _, e := range m.AgentEnv {
			q = append(q, shellQuote(e))
		}
		env = "env " + strings.Join(q, " ") + " "
	}
	return `set -e
mkdir -p /opt/dflow ` + guestDir + `
if [ -f /tmp/dflow.upload ]; then install -m 755 /tmp/dflow.upload ` + guestBinary + ` && rm -f /tmp/dflow.upload; fi
install -m 600 /tmp/dflow.keys ` + guestKeys + `
if [ -s ` + guestDir + `/agent.pid ]; then kill -s TERM -- -$(cat ` + guestDir + `/agent.pid) 2>/dev/null || true; sleep 1; kill -s KILL -- -$(cat ` + guestDir + `/agent.pid) 2>/dev/null || true; fi
rm -f ` + guestDir + `/agent.pid
cd ` + guestDir + `
setsid ` + env + strings.Join(cmd, " ") + ` >> agent.log 2>&1 < /dev/null &
for i in $(seq 100); do [ -s agent.pid ] && exit 0; sleep 0.1; done
echo "the agent did not start; last lines of ` + guestDir + `/agent.log:" >&2
tail -n 15 agent.log >&2
exit 1
`
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
