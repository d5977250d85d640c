package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one measured figure.
type Result struct {
	Name    string  `json:"name"`
	N       int     `json:"n,omitempty"`
	Seconds float64 `json:"seconds"`
	PerNode float64 `json:"per_node_seconds,omitempty"`
	Note    string  `json:"note,omitempty"`
}

// Report is what bench writes.
type Report struct {
	When    time.Time `json:"when"`
	Host    string    `json:"host"`
	CPUs    int       `json:"cpus"`
	Results []Result  `json:"results"`
}

func main() {
	bin := flag.String("dflow", os.Getenv("DFLOW_BIN"), "the dflow binary to measure")
	out := flag.String("out", "bench/results", "directory for the JSON report")
	sizes := flag.String("nodes", "1,5,10,25", "comma-separated node counts for the provisioning figures")
	parallel := flag.Int("parallel", 4, "nodes.parallel for the project")
	flag.Parse()
	if *bin == "" {
		fail(fmt.Errorf("no dflow binary: set DFLOW_BIN or -dflow (make bench does)"))
	}
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fail(fmt.Errorf("-nodes: bad count %q", s))
		}
		ns = append(ns, n)
	}
	dir, err := os.MkdirTemp("", "dflow-bench")
	if err != nil {
		fail(err)
	}
	yaml := fmt.Sprintf("name: bench-%d\nnodes:\n  parallel: %d\n", os.Getpid(), *parallel)
	if err := os.WriteFile(filepath.Join(dir, "dflow.yaml"), []byte(yaml), 0o644); err != nil {
		fail(err)
	}
	d := dflow{bin: *bin, dir: dir}
	cleanup = func() {
		_, _ = d.run("set", "0", "--wait")
		_, _ = d.run("server", "stop")
		_ = os.RemoveAll(dir)
	}
	defer cleanup()

	var rs []Result
	t := d.must("server", "start")
	rs = append(rs, Result{Name: "control plane cold start (new database)", Seconds: t})
	d.must("server", "stop")
	t = d.must("server", "start")
	rs = append(rs, Result{Name: "control plane warm start (existing database)", Seconds: t})
	t = d.must("get")
	rs = append(rs, Result{Name: "read-only command (get)", Seconds: t})
	t = d.must("set", "0")
	rs = append(rs, Result{Name: "no-op workflow end to end (set 0 on empty)", Seconds: t, Note: "start, inventory activity, follow, exit"})
	for _, n := range ns {
		t := d.must("set", strconv.Itoa(n))
		rs = append(rs, Result{Name: "set N from 0", N: n, Seconds: t, PerNode: t / float64(n), Note: fmt.Sprintf("parallel %d", *parallel)})
		if n == ns[len(ns)-1] {
			t = d.must("cycle", "0")
			rs = append(rs, Result{Name: "cycle one node", N: n, Seconds: t})
		}
		t = d.must("set", "0")
		rs = append(rs, Result{Name: "set 0 from N", N: n, Seconds: t, PerNode: t / float64(n)})
	}

	host, _ := os.Hostname()
	rep := Report{When: time.Now().UTC(), Host: host, CPUs: runtime.NumCPU(), Results: rs}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tN\tSECONDS\tPER NODE\tNOTE")
	for _, r := range rs {
		n, per := "-", "-"
		if r.N > 0 {
			n = strconv.Itoa(r.N)
		}
		if r.PerNode > 0 {
			per = fmt.Sprintf("%.3f", r.PerNode)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%s\t%s\n", r.Name, n, r.Seconds, per, r.Note)
	}
	_ = tw.Flush()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail(err)
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	path := filepath.Join(*out, "provision.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		fail(err)
	}
	fmt.Printf("\nwrote %s\n", path)
}

type dflow struct{ bin, dir string }

func (d dflow) run(args ...string) (float64, error) {
	cmd := exec.Command(d.bin, args...)
	cmd.Dir = d.dir
	var errb bytes.Buffer
	cmd.Stderr = &errb
	t0 := time.Now()
	err := cmd.Run()
	if err != nil {
		return 0, fmt.Errorf("dflow %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return time.Since(t0).Seconds(), nil
}

func (d dflow) must(args ...string) float64 {
	t, err := d.run(args...)
	if err != nil {
		fail(err)
	}
	return t
}

// cleanup removes what the bench made; fail runs it before exiting.
var cleanup = func() {}

func fail(err error) {
	cleanup()
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
