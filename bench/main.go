package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Figure is one measured figure, with the target it is held against (if any).
type Figure struct {
	Name   string  `json:"name"`
	N      int     `json:"n,omitempty"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target string  `json:"target,omitempty"` // e.g. "<= 1 ms"
	OK     *bool   `json:"ok,omitempty"`     // whether Value meets Target
	Note   string  `json:"note,omitempty"`
}

// Report is what a benchmark writes to <out>/<name>.json.
type Report struct {
	Bench   string    `json:"bench"`
	When    time.Time `json:"when"`
	Host    string    `json:"host"`
	CPUs    int       `json:"cpus"`
	Seconds float64   `json:"seconds"` // how long the benchmark ran
	Figures []Figure  `json:"figures"`
	Data    any       `json:"data,omitempty"` // raw series behind the figures and plots
}

// env is what every benchmark gets.
type env struct {
	bin   string // the dflow binary
	out   string // JSON directory
	plots string // PNG directory
	work  string // scratch directory, removed at the end
	opt   options
}

type options struct {
	provisionNodes string
	parallel       int
	proxySeconds   float64
	proxyConc      int
	proxyRate      int
	proxyReps      int
	zdRate         int
	zdCycles       int
	rolloutNodes   string
	copyNodes      string
	copyMB         int
	copyBandwidth  float64 // MB/s per node
}

type benchmark struct {
	name string
	run  func(e *env) ([]Figure, any, error)
}

var benchmarks = []benchmark{
	{"provision", runProvision},
	{"proxy", runProxy},
	{"zerodowntime", runZeroDowntime},
	{"rollout", runRollout},
	{"copy", runCopy},
}

func main() {
	serveRoleIfAsked()
	var e env
	bin := flag.String("dflow", os.Getenv("DFLOW_BIN"), "the dflow binary to measure")
	flag.StringVar(&e.out, "out", "bench/results", "directory for the JSON reports")
	flag.StringVar(&e.plots, "plots", "docs", "directory for the PNG plots (\"\": none)")
	only := flag.String("only", "", "comma-separated benchmarks to run (default all): provision, proxy, zerodowntime, rollout, copy")
	flag.StringVar(&e.opt.provisionNodes, "nodes", "1,5,10,25", "provision: node counts")
	flag.IntVar(&e.opt.parallel, "parallel", 4, "provision: nodes.parallel for the project")
	flag.Float64Var(&e.opt.proxySeconds, "proxy-seconds", 3, "proxy: seconds per load run")
	flag.IntVar(&e.opt.proxyConc, "proxy-conc", 16, "proxy: connections (and workers) of the max-throughput runs")
	flag.IntVar(&e.opt.proxyReps, "proxy-reps", 3, "proxy: runs per figure (the median is reported)")
	flag.IntVar(&e.opt.proxyRate, "proxy-rate", 1000, "proxy: requests per second of the fixed-rate latency runs")
	flag.IntVar(&e.opt.zdRate, "zd-rate", 200, "zerodowntime: requests per second across the 5 app URLs")
	flag.IntVar(&e.opt.zdCycles, "zd-cycles", 20, "zerodowntime: deploy/rollback cycles")
	flag.StringVar(&e.opt.rolloutNodes, "rollout-nodes", "100,50,10,1", "rollout: node counts (measured from the largest down)")
	flag.StringVar(&e.opt.copyNodes, "copy-nodes", "10,50,100", "copy: node counts")
	flag.IntVar(&e.opt.copyMB, "copy-mb", 100, "copy: artifact size in MB (10^6 bytes)")
	flag.Float64Var(&e.opt.copyBandwidth, "copy-bw", 125, "copy: per-node bandwidth cap B in MB/s")
	replotOnly := flag.Bool("replot", false, "only draw the plots again from the JSON reports in -out")
	flag.Parse()
	if *replotOnly {
		if err := replot(e.out, e.plots); err != nil {
			fail(err)
		}
		return
	}

	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			want[s] = true
		}
	}
	for name := range want {
		known := false
		for _, b := range benchmarks {
			known = known || b.name == name
		}
		if !known {
			fail(fmt.Errorf("-only: unknown benchmark %q", name))
		}
	}
	if *bin == "" {
		fail(fmt.Errorf("no dflow binary: set DFLOW_BIN or -dflow (make bench does)"))
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fail(err)
	}
	e.bin = abs
	if e.work, err = os.MkdirTemp("", "dflow-bench"); err != nil {
		fail(err)
	}
	addCleanup(func() { _ = os.RemoveAll(e.work) })
	defer runCleanups()
	for _, d := range []string{e.out, e.plots} {
		if d != "" {
			if err := os.MkdirAll(d, 0o755); err != nil {
				fail(err)
			}
		}
	}

	host, _ := os.Hostname()
	failed := false
	for _, b := range benchmarks {
		if len(want) > 0 && !want[b.name] {
			continue
		}
		fmt.Printf("\n== %s\n", b.name)
		t0 := time.Now()
		figs, data, err := runOne(b, &e)
		rep := Report{Bench: b.name, When: time.Now().UTC(), Host: host, CPUs: runtime.NumCPU(),
			Seconds: time.Since(t0).Seconds(), Figures: figs, Data: data}
		printTable(figs)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", b.name, err)
			failed = true
			if len(figs) == 0 {
				continue
			}
		}
		path := filepath.Join(e.out, b.name+".json")
		bs, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(path, append(bs, '\n'), 0o644); err != nil {
			fail(err)
		}
		fmt.Printf("(%s in %.0fs; wrote %s)\n", b.name, rep.Seconds, path)
	}
	runCleanups()
	if failed {
		os.Exit(1)
	}
}

// runOne runs b, turning a fatal error inside it (see benchTB) into an error.
func runOne(b benchmark, e *env) (figs []Figure, data any, err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = fe.err
		}
	}()
	return b.run(e)
}

func printTable(figs []Figure) {
	if len(figs) == 0 {
		return
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tN\tMEASURED\tTARGET\tOK\tNOTE")
	for _, f := range figs {
		n, ok := "-", ""
		if f.N > 0 {
			n = fmt.Sprint(f.N)
		}
		if f.OK != nil {
			ok = map[bool]string{true: "yes", false: "NO"}[*f.OK]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, n, fmtValue(f.Value, f.Unit), f.Target, ok, f.Note)
	}
	_ = tw.Flush()
}

func fmtValue(v float64, unit string) string {
	switch {
	case unit == "" && v == float64(int64(v)):
		return fmt.Sprintf("%d", int64(v))
	case unit == "" || unit == "x":
		return fmt.Sprintf("%.3g%s", v, unit)
	case v == float64(int64(v)) && v < 1e15:
		return fmt.Sprintf("%d %s", int64(v), unit)
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	default:
		return fmt.Sprintf("%.3g %s", v, unit)
	}
}

// fig is a figure without a target.
func fig(name string, n int, v float64, unit, note string) Figure {
	return Figure{Name: name, N: n, Value: v, Unit: unit, Note: note}
}

// atMost is a figure held against "<= limit".
func atMost(name string, n int, v float64, unit string, limit float64, note string) Figure {
	ok := v <= limit
	return Figure{Name: name, N: n, Value: v, Unit: unit, Target: "<= " + fmtValue(limit, unit), OK: &ok, Note: note}
}

// atLeast is a figure held against ">= limit".
func atLeast(name string, n int, v float64, unit string, limit float64, note string) Figure {
	ok := v >= limit
	return Figure{Name: name, N: n, Value: v, Unit: unit, Target: ">= " + fmtValue(limit, unit), OK: &ok, Note: note}
}

// cleanups undo what the benchmarks made (nodes, control planes, files),
// last first; fail runs them before exiting.
var cleanups []func()

func addCleanup(f func()) { cleanups = append(cleanups, f) }

func runCleanups() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func fail(err error) {
	runCleanups()
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
