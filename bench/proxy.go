package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/distributive-flow/dflow/agent/proxy"
)

// proxyRun is one load run of the proxy benchmark.
type proxyRun struct {
	Handler string       `json:"handler"` // "trivial" or "1ms"
	Path    string       `json:"path"`    // "direct" or "proxy"
	Load    string       `json:"load"`    // "max" (closed loop) or "rate"
	Stats   latencyStats `json:"stats"`
}

// runProxy sends the same load straight to an upstream and through the
// agent's reverse proxy (agent/proxy, http mode, as the agent runs it), each
// a process of its own (this binary re-executed), for a trivial handler
// and a 1 ms one: a closed loop of
// -proxy-conc workers for throughput, then a fixed rate for latency.
func runProxy(e *env) ([]Figure, any, error) {
	handlers := []struct {
		name  string
		sleep time.Duration
	}{{"trivial", 0}, {"1ms", time.Millisecond}}
	var runs []proxyRun
	var fs []Figure
	dur := time.Duration(e.opt.proxySeconds * float64(time.Second))
	for _, h := range handlers {
		up, stopUp, err := spawnRole("upstream", h.sleep.String())
		if err != nil {
			return fs, runs, err
		}
		px, stopPx, err := spawnRole("proxy", up)
		if err != nil {
			stopUp()
			return fs, runs, err
		}
		// The same proxy in tcp mode: a relay that does not read HTTP at
		// all, so the cost of one more hop on this machine, whatever the
		// proxy does.
		rl, stopRl, err := spawnRole("proxy", up, "DFLOW_BENCH_MODE=tcp")
		if err != nil {
			stopPx()
			stopUp()
			return fs, runs, err
		}
		urls := map[string]string{"direct": "http://" + up + "/", "proxy": "http://" + px + "/", "relay": "http://" + rl + "/"}
		res := map[string]latencyStats{}
		// Each figure is the median of -proxy-reps runs, direct and proxied
		// alternating, so that a burst of other work on the machine does
		// not land on one side only.
		type cfg struct {
			load string
			o    loadOptions
		}
		cfgs := []cfg{}
		for _, c := range proxyConcs(e.opt.proxyConc) {
			cfgs = append(cfgs, cfg{fmt.Sprintf("max%d", c), loadOptions{Workers: c, Duration: dur}})
		}
		cfgs = append(cfgs, cfg{"rate", loadOptions{Rate: e.opt.proxyRate, Workers: 8, Duration: dur}})
		for _, c := range cfgs {
			reps := map[string][]latencyStats{}
			for i := 0; i < e.opt.proxyReps; i++ {
				for _, path := range proxyPaths {
					// A short warm-up: connections, goroutines, heap.
					attack([]string{urls[path]}, loadOptions{Rate: 200, Workers: 4, Duration: 200 * time.Millisecond}, nil)
					reps[path] = append(reps[path], stats(attack([]string{urls[path]}, c.o, nil)))
				}
			}
			for _, path := range proxyPaths {
				st := medianRun(reps[path], c.load == "rate")
				runs = append(runs, proxyRun{Handler: h.name, Path: path, Load: c.load, Stats: st})
				res[c.load+"/"+path] = st
				fmt.Printf("  %-7s %-6s %-5s %6.0f req/s  p50 %.3f ms  p99 %.3f ms  failed %d of %d\n", h.name, path, c.load, st.PerSec, st.P50ms, st.P99ms, st.Failed, st.Requests)
			}
		}
		stopRl()
		stopPx()
		stopUp()

		for _, c := range proxyConcs(e.opt.proxyConc) {
			md, mp := res[fmt.Sprintf("max%d/direct", c)], res[fmt.Sprintf("max%d/proxy", c)]
			conc := fmt.Sprintf("%d connections, closed loop", c)
			ratio := mp.PerSec / md.PerSec
			fs = append(fs, fig("direct throughput, "+h.name+" handler", 0, md.PerSec, "req/s", conc))
			fs = append(fs, fig("proxy throughput, "+h.name+" handler", 0, mp.PerSec, "req/s", conc))
			if h.name == "1ms" {
				fs = append(fs, atLeast("proxy/direct throughput, 1ms handler", 0, ratio, "x", 0.9, conc))
			} else {
				fs = append(fs, fig("proxy/direct throughput, trivial handler", 0, ratio, "x", conc))
			}
			mr := res[fmt.Sprintf("max%d/relay", c)]
			fs = append(fs, fig("tcp relay/direct throughput, "+h.name+" handler", 0, mr.PerSec/md.PerSec, "x", conc+"; the floor of any hop"))
		}
		rd, rp, rr := res["rate/direct"], res["rate/proxy"], res["rate/relay"]
		at := fmt.Sprintf("at %d req/s: direct %.3f / proxy %.3f ms", e.opt.proxyRate, rd.P50ms, rp.P50ms)
		fs = append(fs, fig("added p50 latency, "+h.name+" handler", 0, rp.P50ms-rd.P50ms, "ms", at))
		at = fmt.Sprintf("at %d req/s: direct %.3f / proxy %.3f ms", e.opt.proxyRate, rd.P99ms, rp.P99ms)
		fs = append(fs, atMost("added p99 latency, "+h.name+" handler", 0, rp.P99ms-rd.P99ms, "ms", 1, at))
		at = fmt.Sprintf("at %d req/s: direct %.3f / relay %.3f ms; p99 %.3f / %.3f ms", e.opt.proxyRate, rd.P50ms, rr.P50ms, rd.P99ms, rr.P99ms)
		fs = append(fs, fig("tcp relay added p50 latency, "+h.name+" handler", 0, rr.P50ms-rd.P50ms, "ms", at))
		failed := 0
		for _, r := range runs {
			if r.Handler == h.name {
				failed += r.Stats.Failed
			}
		}
		fs = append(fs, atMost("failed requests, "+h.name+" handler", 0, float64(failed), "", 0, "the medians' runs"))
	}
	if e.plots != "" {
		if err := plotProxy(e.plots, runs, e.opt.proxyConc); err != nil {
			return fs, runs, err
		}
	}
	return fs, runs, nil
}

// proxyPaths: straight to the upstream, through the proxy in http mode (as
// the agent runs apps by default), and through it in tcp mode.
var proxyPaths = []string{"direct", "proxy", "relay"}

// proxyConcs are the closed-loop concurrencies: 4 and -proxy-conc.
func proxyConcs(c int) []int {
	if c == 4 {
		return []int{4}
	}
	return []int{4, c}
}

// medianRun is the run with the median throughput (byP99: the median p99).
func medianRun(rs []latencyStats, byP99 bool) latencyStats {
	rs = append([]latencyStats(nil), rs...)
	sort.Slice(rs, func(i, j int) bool {
		if byP99 {
			return rs[i].P99ms < rs[j].P99ms
		}
		return rs[i].PerSec < rs[j].PerSec
	})
	return rs[len(rs)/2]
}

// roleEnv makes the bench binary, re-executed, serve one role of the proxy
// benchmark in a process of its own (as the agent and the app are): see
// serveRoleIfAsked.
const roleEnv = "DFLOW_BENCH_ROLE"

// spawnRole starts this binary again as role (with arg) and returns the
// address it listens on and a function that stops it.
func spawnRole(role, arg string, env ...string) (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), roleEnv+"="+role, "DFLOW_BENCH_ARG="+arg), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("%s process: %w", role, err)
	}
	return strings.TrimSpace(line), stop, nil
}

// serveRoleIfAsked serves a role and exits when roleEnv is set: "upstream"
// (POST / reads the body, sleeps DFLOW_BENCH_ARG, answers "ok") or "proxy"
// (agent/proxy in http mode, as the agent runs it, or in DFLOW_BENCH_MODE,
// switched to the upstream at DFLOW_BENCH_ARG). It prints the address it listens on, then serves
// until SIGTERM.
func serveRoleIfAsked() {
	role := os.Getenv(roleEnv)
	if role == "" {
		return
	}
	arg := os.Getenv("DFLOW_BENCH_ARG")
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	switch role {
	case "upstream":
		sleep, err := time.ParseDuration(arg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench upstream:", err)
			os.Exit(2)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench upstream:", err)
			os.Exit(1)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			if sleep > 0 {
				time.Sleep(sleep)
			}
			_, _ = io.WriteString(w, "ok")
		}), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		fmt.Println(ln.Addr())
	case "proxy":
		// DFLOW_BENCH_CPUPROFILE=FILE profiles the proxy process (go tool pprof FILE).
		if f := os.Getenv("DFLOW_BENCH_CPUPROFILE"); f != "" {
			out, err := os.Create(f)
			if err == nil {
				err = pprof.StartCPUProfile(out)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench proxy:", err)
				os.Exit(1)
			}
		}
		px := proxy.New(proxy.Options{Listen: "127.0.0.1:0", Mode: proxy.Mode(os.Getenv("DFLOW_BENCH_MODE")), Log: func(string, ...any) {}})
		if err := px.Start(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "bench proxy:", err)
			os.Exit(1)
		}
		px.Switch(arg)
		fmt.Println(px.Addr())
	default:
		fmt.Fprintf(os.Stderr, "bench: unknown role %q\n", role)
		os.Exit(2)
	}
	<-term
	pprof.StopCPUProfile() // if one was started
	os.Exit(0)
}
