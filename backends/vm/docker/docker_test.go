package docker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	containerdocker "github.com/distributive-flow/dflow/backends/container/docker"
	"github.com/distributive-flow/dflow/backends/vm/docker"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// dflowBin is the real dflow executable the node image is built from: the
// agent in a node container must be dflow itself, not this test binary.
var dflowBin string

func TestMain(m *testing.M) {
	os.Setenv(containerdocker.LabelsEnv, testsuite.DockerLabels())
	bin, tmp, err := testsuite.DflowBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dflowBin = bin
	code := m.Run()
	testsuite.CleanDocker()
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

func open(t *testing.T) (*docker.Backend, string) {
	cli := testsuite.Docker(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	cluster := "t" + hex.EncodeToString(b)
	signer := testsuite.NewSigner(t)
	be, err := docker.New(docker.Options{
		Cluster:   cluster,
		AgentPort: 17077,
		Signer:    signer,
		Client:    cli,
		Binary:    dflowBin,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.Background()
		nodes, _ := be.List(ctx)
		for _, n := range nodes {
			_ = be.Destroy(ctx, n)
		}
		f := filters.NewArgs(filters.Arg("label", docker.LabelCluster+"="+cluster))
		cs, _ := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		for _, c := range cs {
			_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}
		ns, _ := cli.NetworkList(ctx, network.ListOptions{Filters: f})
		for _, n := range ns {
			_ = cli.NetworkRemove(ctx, n.ID)
		}
	})
	return be, string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
}

func kill(t *testing.T, be *docker.Backend, n deploy.Node) {
	cli := testsuite.Docker(t)
	ctx := context.Background()
	require.NoError(t, cli.ContainerKill(ctx, be.ContainerName(n.Index), "SIGKILL"))
	require.Eventually(t, func() bool {
		c, err := cli.ContainerInspect(ctx, be.ContainerName(n.Index))
		return err == nil && !c.State.Running
	}, 10*time.Second, 20*time.Millisecond)
}

// remains is what the backend holds for node index: its container,
// running or not, and the cluster's network once no container is left.
func remains(t *testing.T, be *docker.Backend, cluster string, index int) []string {
	cli := testsuite.Docker(t)
	ctx := context.Background()
	var out []string
	all, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", docker.LabelCluster+"="+cluster))})
	require.NoError(t, err)
	for _, c := range all {
		if c.Labels[docker.LabelIndex] == strconv.Itoa(index) {
			out = append(out, "container "+strings.Join(c.Names, ",")+" ("+c.State+")")
		}
	}
	if len(all) == 0 {
		if _, err := cli.NetworkInspect(ctx, be.NetworkName(), network.InspectOptions{}); err == nil {
			out = append(out, "network "+be.NetworkName())
		}
	}
	return out
}

// images are two tags of the node image: nodes made from either run.
func images(t *testing.T, be *docker.Backend) [2]string {
	ctx := context.Background()
	tag, err := be.NodeImage(ctx)
	require.NoError(t, err)
	other := "dflow-node-retry:" + strings.TrimPrefix(tag, "dflow-node:")
	require.NoError(t, testsuite.Docker(t).ImageTag(ctx, tag, other))
	return [2]string{tag, other}
}

func TestConformance(t *testing.T) {
	testsuite.VMSuite(t, func(t *testing.T) testsuite.VMHarness {
		b, keys := open(t)
		return testsuite.VMHarness{
			Backend: b, Keys: keys, Kill: func(t *testing.T, n deploy.Node) { kill(t, b, n) },
			Remains: func(t *testing.T, index int) []string { return remains(t, b, b.Cluster(), index) },
			Images:  images(t, b),
		}
	})
}

func TestNodeImageIsBuiltOnceAndNodesStartFast(t *testing.T) {
	b, keys := open(t)
	ctx := context.Background()
	start := time.Now()
	tag, err := b.NodeImage(ctx)
	require.NoError(t, err)
	t.Logf("node image %s ready in %s", tag, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	again, err := b.NodeImage(ctx)
	require.NoError(t, err)
	require.Equal(t, tag, again)
	require.Less(t, time.Since(start), 2*time.Second, "the second call builds nothing")
	start = time.Now()
	n, err := b.Create(ctx, deploy.NodeSpec{Index: 0, Keys: keys})
	require.NoError(t, err)
	t.Logf("node %d (%s) answered in %s", n.Index, n.Address, time.Since(start).Round(time.Millisecond))
	cli := testsuite.Docker(t)
	ii, err := cli.ImageInspect(ctx, tag)
	require.NoError(t, err)
	t.Logf("node image size: %.1f MB", float64(ii.Size)/1e6)
}

func TestAgentThatCannotStartIsReported(t *testing.T) {
	b, _ := open(t)
	_, err := b.Create(context.Background(), deploy.NodeSpec{Index: 0, Keys: "# no keys at all\n"})
	require.ErrorContains(t, err, "holds no keys", "the agent's own error, from its log")
}

func TestNodesOfTwoClustersDoNotMix(t *testing.T) {
	a, ka := open(t)
	b, kb := open(t)
	ctx := context.Background()
	na, err := a.Create(ctx, deploy.NodeSpec{Index: 0, Keys: ka})
	require.NoError(t, err)
	nb, err := b.Create(ctx, deploy.NodeSpec{Index: 0, Keys: kb})
	require.NoError(t, err)
	require.NotEqual(t, na.Address, nb.Address)
	la, err := a.List(ctx)
	require.NoError(t, err)
	require.Len(t, la, 1)
	require.Equal(t, na.ID, la[0].ID)
}

func TestNetworkGoesWithTheLastNode(t *testing.T) {
	b, keys := open(t)
	cli := testsuite.Docker(t)
	ctx := context.Background()
	n0, err := b.Create(ctx, deploy.NodeSpec{Index: 0, Keys: keys})
	require.NoError(t, err)
	n1, err := b.Create(ctx, deploy.NodeSpec{Index: 1, Keys: keys})
	require.NoError(t, err)
	require.NoError(t, b.Destroy(ctx, n0))
	_, err = cli.NetworkInspect(ctx, b.NetworkName(), network.InspectOptions{})
	require.NoError(t, err, "node 1 still uses the network")
	require.NoError(t, b.Destroy(ctx, n1))
	_, err = cli.NetworkInspect(ctx, b.NetworkName(), network.InspectOptions{})
	require.Error(t, err, "the network went with the last node")
	again, err := b.Create(ctx, deploy.NodeSpec{Index: 1, Keys: keys})
	require.NoError(t, err, "and comes back with the next one")
	require.Equal(t, n1.Address, again.Address, "on the same subnet when it is still free")
}

func TestCreateOfAMissingImageLeavesNoNetwork(t *testing.T) {
	b, keys := open(t)
	_, err := b.Create(context.Background(), deploy.NodeSpec{Index: 0, Image: "dflow-no-such-image:0", Keys: keys})
	require.ErrorContains(t, err, "dflow-no-such-image:0")
	require.Empty(t, remains(t, b, b.Cluster(), 0), "the network the failed create made went with it")
	held, err := b.Remains(context.Background())
	require.NoError(t, err)
	require.Equal(t, []int{}, held)
}
