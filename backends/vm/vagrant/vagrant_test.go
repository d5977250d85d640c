package vagrant_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/backends/vm/vagrant"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// TestMain doubles as the node agent: the machines run this test binary
// (mounted into the container) with DFLOW_TEST_AGENT=1.
func TestMain(m *testing.M) {
	testsuite.ServeAgentIfAsked()
	os.Exit(m.Run())
}

// requireVagrantDocker skips, loudly, unless vagrant and a docker engine
// are here.
func requireVagrantDocker(t *testing.T) {
	t.Helper()
	skip := func(why string) {
		msg := "SKIPPED: the vagrant backend is NOT tested for real: " + why
		fmt.Fprintln(os.Stderr, "!!! "+msg)
		t.Skip(msg)
	}
	if _, err := exec.LookPath("vagrant"); err != nil {
		skip("vagrant is missing (Debian's vagrant package; `make deps` installs it)")
	}
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		skip(fmt.Sprintf("no docker engine answers: %v: %s", err, bytes.TrimSpace(out)))
	}
}

// testImage is a docker image holding only what this test binary needs to
// run (its dynamic loader and libraries), built locally: no registry here.
var testImage = sync.OnceValues(func() (string, error) {
	ctx, err := os.MkdirTemp("", "dflow-vagrant-image")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(ctx)
	out, _ := exec.Command("ldd", os.Args[0]).Output() // "not a dynamic executable" fails: nothing to copy
	h := sha256.New()
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if strings.HasPrefix(f, "/") {
				libs = append(libs, f)
			}
		}
	}
	for _, lib := range libs {
		data, err := os.ReadFile(lib)
		if err != nil {
			return "", err
		}
		dst := filepath.Join(ctx, "root", lib)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %x\n", lib, sha256.Sum256(data))
	}
	if err := os.MkdirAll(filepath.Join(ctx, "root", "var", "lib"), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\nCOPY root/ /\n"), 0o644); err != nil {
		return "", err
	}
	name := "dflow-vagrant-test:" + hex.EncodeToString(h.Sum(nil))[:12]
	if exec.Command("docker", "image", "inspect", name).Run() == nil {
		return name, nil
	}
	if out, err := exec.Command("docker", "build", "-q", "-t", name, ctx).CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker build: %v: %s", err, out)
	}
	return name, nil
})

// machineDir is the local backend tests' registry, so the two never hand
// out the same address at once.
var machineDir = filepath.Join(os.TempDir(), "dflow-local-test-registry")

func open(t *testing.T, mod func(*vagrant.Options)) (*vagrant.Backend, vagrant.Options, string) {
	requireVagrantDocker(t)
	image, err := testImage()
	require.NoError(t, err)
	project := t.TempDir()
	state := filepath.Join(project, ".dflow")
	require.NoError(t, os.MkdirAll(state, 0o755))
	signer := testsuite.NewSigner(t)
	o := vagrant.Options{
		StateDir:     state,
		Project:      project,
		Image:        image,
		AgentPort:    testsuite.FreePort(t, "127.0.0.1"),
		Binary:       os.Args[0],
		AgentEnv:     []string{"DFLOW_TEST_AGENT=1"},
		AgentCommand: []string{vagrant.BinaryToken},
		Signer:       signer,
		MachineDir:   machineDir,
		StartTimeout: 30 * time.Second,
	}
	if mod != nil {
		mod(&o)
	}
	b, err := vagrant.New(o)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		entries, _ := os.ReadDir(filepath.Join(state, "vagrant"))
		for _, e := range entries {
			i, err := strconv.Atoi(e.Name())
			if err == nil {
				if err := b.Destroy(ctx, deploy.Node{Index: i}); err != nil {
					t.Logf("cleanup: %v", err)
				}
			}
		}
	})
	return b, o, string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
}

// containerID is the docker container of node index, from vagrant's own
// records.
func containerID(t *testing.T, o vagrant.Options, index int) string {
	id, err := os.ReadFile(filepath.Join(o.StateDir, "vagrant", strconv.Itoa(index), ".vagrant", "machines", "default", "docker", "id"))
	require.NoError(t, err)
	return strings.TrimSpace(string(id))
}

// remains is what node index left: its directory, and docker containers
// labelled as its machine's.
func remains(t *testing.T, o vagrant.Options, index int) []string {
	dir := filepath.Join(o.StateDir, "vagrant", strconv.Itoa(index))
	var out []string
	if _, err := os.Stat(dir); err == nil {
		out = append(out, dir)
	}
	ps, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+vagrant.LabelMachineDir+"="+dir).Output()
	require.NoError(t, err)
	for _, id := range strings.Fields(string(ps)) {
		out = append(out, "container "+id)
	}
	return out
}

// images are two tags of the test image: machines of either run.
func images(t *testing.T, o vagrant.Options) [2]string {
	other := strings.Replace(o.Image, "dflow-vagrant-test:", "dflow-vagrant-retry:", 1)
	out, err := exec.Command("docker", "tag", o.Image, other).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return [2]string{o.Image, other}
}

func TestConformance(t *testing.T) {
	testsuite.VMSuite(t, func(t *testing.T) testsuite.VMHarness {
		b, o, keys := open(t, nil)
		return testsuite.VMHarness{
			Backend: b, Keys: keys, Kill: func(t *testing.T, n deploy.Node) {
				out, err := exec.Command("docker", "kill", "-s", "KILL", containerID(t, o, n.Index)).CombinedOutput()
				require.NoError(t, err, "%s", out)
			},
			Remains: func(t *testing.T, index int) []string { return remains(t, o, index) },
			Images:  images(t, o),
		}
	})
}

func TestCreateTimesAndFiles(t *testing.T) {
	b, o, keys := open(t, nil)
	ctx := context.Background()
	start := time.Now()
	n, err := b.Create(ctx, deploy.NodeSpec{Index: 0, Keys: keys})
	require.NoError(t, err)
	created := time.Since(start)
	start = time.Now()
	again, err := b.Create(ctx, deploy.NodeSpec{Index: 0, Keys: keys})
	require.NoError(t, err)
	require.Equal(t, n, again)
	existing := time.Since(start)
	t.Logf("vagrant (docker provider): create %s, create of a running node %s", created.Round(time.Millisecond), existing.Round(time.Millisecond))

	dir := filepath.Join(o.StateDir, "vagrant", "0")
	vf, err := os.ReadFile(filepath.Join(dir, "Vagrantfile"))
	require.NoError(t, err)
	t.Logf("the generated Vagrantfile:\n%s", vf)
	for _, want := range []string{
		`d.image = "` + o.Image + `"`,
		`d.create_args = ["-p", "` + n.Address + ":" + strconv.Itoa(o.AgentPort) + ":" + strconv.Itoa(o.AgentPort) + `", "--label", "` + vagrant.LabelMachineDir + "=" + dir + `"]`,
		`"--node-id", "` + n.ID + `"`,
	} {
		require.Contains(t, string(vf), want)
	}
	// vagrant itself sees the machine running.
	cmd := exec.Command("vagrant", "status", "--machine-readable")
	cmd.Dir = dir
	out, err := cmd.Output()
	require.NoError(t, err)
	require.Contains(t, string(out), ",state,running")
	// The agent's own directory is the node's state/.
	require.FileExists(t, filepath.Join(dir, "state", "agent.pid"))
}

func TestAgentThatCannotStartIsReported(t *testing.T) {
	// A start timeout far longer than vagrant up takes here (about 12 s
	// idle: it may itself wait for the container before it gives up, "never
	// left the stopped state"), so that a slow machine cannot blur the two.
	b, o, _ := open(t, func(o *vagrant.Options) { o.StartTimeout = 3 * time.Minute })
	start := time.Now()
	_, err := b.Create(context.Background(), deploy.NodeSpec{Index: 0, Keys: "# no keys\n"})
	require.ErrorContains(t, err, "create node 0: the machine is stopped")
	require.ErrorContains(t, err, "holds no keys", "the agent's own error, from vagrant docker-logs")
	require.Less(t, time.Since(start), o.StartTimeout, "a machine that stopped is reported at once, not after the start timeout")
	t.Log(err)
	require.Empty(t, remains(t, o, 0), "the failed create removed the machine it made")
	entries, _ := os.ReadDir(filepath.Join(machineDir, "loopback"))
	for _, e := range entries {
		raw, _ := os.ReadFile(filepath.Join(machineDir, "loopback", e.Name()))
		require.NotContains(t, string(raw), strconv.Quote(o.Project), "and gave back the address it claimed (%s)", e.Name())
	}
}

func TestMissingImageAndVagrantAreClear(t *testing.T) {
	b, _, keys := open(t, func(o *vagrant.Options) { o.Image = "" })
	_, err := b.Create(context.Background(), deploy.NodeSpec{Index: 0, Keys: keys})
	require.ErrorContains(t, err, "create node 0: no image")

	b, _, keys = open(t, func(o *vagrant.Options) { o.Image = "dflow-no-such-image:0" })
	_, err = b.Create(context.Background(), deploy.NodeSpec{Index: 0, Keys: keys})
	require.ErrorContains(t, err, "create node 0: vagrant up --provider=docker")
	t.Log(err)

	b, _, keys = open(t, func(o *vagrant.Options) { o.Vagrant = "/nonexistent/vagrant" })
	_, err = b.Create(context.Background(), deploy.NodeSpec{Index: 0, Keys: keys})
	require.ErrorContains(t, err, "/nonexistent/vagrant")
}

// TestVMVagrantfileValidates checks the Vagrantfile for VM providers (a box,
// forwarded ports, provisioners that start the agent) with `vagrant
// validate`: no box or hypervisor is needed for that, and there is neither
// here.
func TestVMVagrantfileValidates(t *testing.T) {
	requireVagrantDocker(t)
	fake := t.TempDir()
	// It records its calls; up copies the node directory and fails after
	// it made the machine's .vagrant, as a missing hypervisor would.
	script := "#!/bin/sh\necho \"$PWD $*\" >> " + filepath.Join(fake, "calls") + "\n[ \"$1\" = destroy ] && exit 0\n" +
		"[ \"$1\" = up ] && { mkdir -p .vagrant; cp -r . " + filepath.Join(fake, "node") + "; }\ncp Vagrantfile " + filepath.Join(fake, "Vagrantfile") + "\necho 'no virtualbox here' >&2\nexit 1\n"
	require.NoError(t, os.WriteFile(filepath.Join(fake, "vagrant"), []byte(script), 0o755))
	b, o, keys := open(t, func(o *vagrant.Options) {
		o.Provider = "virtualbox"
		o.Image = "debian/bookworm64"
		o.Ports = []int{8080}
		o.Vagrant = filepath.Join(fake, "vagrant")
	})
	_, err := b.Create(context.Background(), deploy.NodeSpec{Index: 0, Keys: keys})
	require.ErrorContains(t, err, "vagrant up --provider=virtualbox")
	calls, err := os.ReadFile(filepath.Join(fake, "calls"))
	require.NoError(t, err)
	nodeDir := filepath.Join(o.StateDir, "vagrant", "0")
	require.Equal(t, nodeDir+" up --provider=virtualbox\n"+nodeDir+" status --machine-readable\n"+nodeDir+" destroy -f\n", string(calls),
		"up, then what state it left the machine in, then the failed create destroys the machine it made")
	require.NoDirExists(t, nodeDir, "and removes its directory")
	vf, err := os.ReadFile(filepath.Join(fake, "Vagrantfile"))
	require.NoError(t, err)
	t.Logf("the generated Vagrantfile:\n%s", vf)
	for _, want := range []string{
		`config.vm.box = "debian/bookworm64"`,
		`config.vm.network "forwarded_port", guest: 8080, host: 8080, host_ip: "127.0.0.`,
		`type: "file", source: "` + o.Binary + `"`,
		`config.vm.provision "dflow-agent", type: "shell", run: "always"`,
		`setsid env DFLOW_TEST_AGENT=1 /opt/dflow/dflow --dir /var/lib/dflow --listen 0.0.0.0:` + strconv.Itoa(o.AgentPort),
	} {
		require.Contains(t, string(vf), want)
	}
	// Validate it where it was written (its file provisioner's source,
	// authorized_keys, must exist): the directory as up saw it.
	dir := filepath.Join(o.StateDir, "vagrant", "0")
	require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join(fake, "node"))))
	cmd := exec.Command("vagrant", "validate", "--ignore-provider")
	cmd.Dir = dir
	// vagrant validate loads the machine with the default provider, and
	// fails when none is usable: docker is, and --ignore-provider leaves
	// out the provider's own settings (a VirtualBox block means nothing to
	// docker); the box, network and provisioners are checked all the same.
	cmd.Env = append(os.Environ(), "VAGRANT_CHECKPOINT_DISABLE=1", "VAGRANT_DEFAULT_PROVIDER=docker")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Logf("vagrant validate: %s", bytes.TrimSpace(out))
}
