package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// runProvision measures the control plane's start and provisioning of
// local nodes (no app): `server start` cold and warm, a read-only command, a
// no-op workflow, `set N` and `set 0` for growing N, `cycle`.
func runProvision(e *env) ([]Figure, any, error) {
	var ns []int
	for _, s := range strings.Split(e.opt.provisionNodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, nil, fmt.Errorf("-nodes: bad count %q", s)
		}
		ns = append(ns, n)
	}
	dir, err := os.MkdirTemp(e.work, "provision")
	if err != nil {
		return nil, nil, err
	}
	yaml := fmt.Sprintf("name: bench-provision-%d\nnodes:\n  parallel: %d\n", os.Getpid(), e.opt.parallel)
	if err := os.WriteFile(filepath.Join(dir, "dflow.yaml"), []byte(yaml), 0o644); err != nil {
		return nil, nil, err
	}
	d := dflow{bin: e.bin, dir: dir}
	addCleanup(d.stop)

	var fs []Figure
	fs = append(fs, fig("control plane cold start (new database)", 0, d.must("server", "start"), "s", ""))
	d.must("server", "stop")
	fs = append(fs, fig("control plane warm start (existing database)", 0, d.must("server", "start"), "s", ""))
	fs = append(fs, fig("read-only command (get)", 0, d.must("get"), "s", ""))
	fs = append(fs, fig("no-op workflow end to end (set 0 on empty)", 0, d.must("set", "0"), "s", "start, inventory activity, follow, exit"))
	for _, n := range ns {
		t := d.must("set", strconv.Itoa(n))
		fs = append(fs, fig("set N from 0", n, t, "s", fmt.Sprintf("%.3f s per node, nodes.parallel %d", t/float64(n), e.opt.parallel)))
		if n == ns[len(ns)-1] {
			fs = append(fs, fig("cycle one node", n, d.must("cycle", "0"), "s", ""))
		}
		t = d.must("set", "0")
		fs = append(fs, fig("set 0 from N", n, t, "s", fmt.Sprintf("%.3f s per node", t/float64(n))))
	}
	return fs, nil, nil
}
