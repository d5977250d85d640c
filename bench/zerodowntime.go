package main

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/distributive-flow/dflow/testsuite"
)

// zdData is what the zero-downtime benchmark keeps besides its figures.
type zdData struct {
	Rate      int          `json:"rate"`
	LoadStart time.Time    `json:"load_start"`
	Ops       []span       `json:"ops"`
	Cutovers  []window     `json:"cutovers"`
	Overall   latencyStats `json:"overall"`
	InCut     latencyStats `json:"in_cutover_windows"`
	InOps     latencyStats `json:"during_commands"`
	Outside   latencyStats `json:"outside_commands"`
	Errors    []string     `json:"errors,omitempty"`
	Seconds   []secondStat `json:"per_second"`
}

type secondStat struct {
	T      float64 `json:"t"` // seconds since the load started
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	Maxms  float64 `json:"max_ms"`
	Failed int     `json:"failed"`
}

// runZeroDowntime deploys examples/hello (built by GHC through dflow) to 5
// local nodes and then, under a fixed-rate load of POSTs across the 5 app
// URLs that retries nothing, runs deploy/rollback cycles: deploy a new
// commit (testsuite.ChangeHello: a different binary whose tests pass),
// roll back, and again.
func runZeroDowntime(e *env) ([]Figure, any, error) {
	tb := &benchTB{tmp: e.work}
	port := testsuite.FreePort(tb)
	d := helloProject(e, tb, "zd", fmt.Sprintf("app:\n  port: %d\n  drain_timeout: 5s\n  stop_grace: 5s\n", port))
	d.must("set", "5")
	t0 := time.Now()
	d.rollout("deploy") // the first deploy: a cold GHC build, no load yet
	fmt.Printf("  first deploy (cold build) in %.1fs\n", time.Since(t0).Seconds())
	var urls []string
	for _, r := range d.versions() {
		urls = append(urls, r.AppURL)
	}
	for _, u := range urls {
		if pu, err := url.Parse(u); err != nil || !net.ParseIP(pu.Hostname()).IsLoopback() {
			return nil, nil, fmt.Errorf("app URL %s is not on 127.0.0.0/8", u)
		}
	}

	stop := make(chan struct{})
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }) }
	addCleanup(halt)
	done := make(chan []sample, 1)
	loadStart := time.Now()
	go func() { done <- attack(urls, loadOptions{Rate: e.opt.zdRate, Workers: 16}, stop) }()
	time.Sleep(3 * time.Second) // steady state first

	var ops []span
	for i := 1; i <= e.opt.zdCycles; i++ {
		testsuite.ChangeHello(tb, d.dir, 100+i)
		dep := d.rollout("deploy")
		rb := d.rollout("rollback")
		ops = append(ops, dep, rb)
		fmt.Printf("  cycle %2d/%d: deploy %.1fs, rollback %.1fs\n", i, e.opt.zdCycles, dep.End.Sub(dep.Start).Seconds(), rb.End.Sub(rb.Start).Seconds())
	}
	time.Sleep(3 * time.Second)
	halt()
	samples := <-done

	c := d.temporal()
	defer c.Close()
	var cuts []window
	for _, op := range ops {
		cuts = append(cuts, history(c, op.Workflow).cutovers()...)
	}
	nodeURL := map[int]string{}
	for _, r := range d.versions() {
		nodeURL[r.Index] = r.AppURL
	}
	var inCut, inOps, outside []sample
	var errs []string
	for _, s := range samples {
		if !s.OK && len(errs) < 20 {
			errs = append(errs, fmt.Sprintf("%s %s: %s", s.At.Format(time.RFC3339Nano), s.URL, s.Err))
		}
		cut := false
		for _, w := range cuts {
			if nodeURL[w.Node] == s.URL && s.At.Before(w.To) && s.end().After(w.From) {
				cut = true
				break
			}
		}
		if cut {
			inCut = append(inCut, s)
		}
		during := false
		for _, op := range ops {
			if s.At.Before(op.End) && s.end().After(op.Start) {
				during = true
				break
			}
		}
		if during {
			inOps = append(inOps, s)
		} else {
			outside = append(outside, s)
		}
	}
	data := zdData{Rate: e.opt.zdRate, LoadStart: loadStart, Ops: ops, Cutovers: cuts, Overall: stats(samples), InCut: stats(inCut),
		InOps: stats(inOps), Outside: stats(outside), Errors: errs, Seconds: perSecond(samples, loadStart)}

	var depT, rbT []float64
	for _, op := range ops {
		if op.Op == "deploy" {
			depT = append(depT, op.End.Sub(op.Start).Seconds())
		} else {
			rbT = append(rbT, op.End.Sub(op.Start).Seconds())
		}
	}
	sort.Float64s(depT)
	sort.Float64s(rbT)
	load := fmt.Sprintf("%d req/s across 5 nodes, %d deploys + %d rollbacks", e.opt.zdRate, len(depT), len(rbT))
	o := data.Overall
	fs := []Figure{
		fig("requests sent", 5, float64(o.Requests), "", load),
		atMost("failed requests", 5, float64(o.Failed), "", 0, "non-retrying POSTs"),
		fig("latency p50, whole run", 5, o.P50ms, "ms", ""),
		fig("latency p99, whole run", 5, o.P99ms, "ms", ""),
		fig("latency max, whole run", 5, o.Maxms, "ms", ""),
		fig("requests in cutover windows", 5, float64(data.InCut.Requests), "", fmt.Sprintf("%d windows: start, gate, switch, drain and stop, per node", len(cuts))),
		atMost("failed requests in cutover windows", 5, float64(data.InCut.Failed), "", 0, ""),
		fig("latency p50, cutover windows", 5, data.InCut.P50ms, "ms", ""),
		fig("latency p99, cutover windows", 5, data.InCut.P99ms, "ms", ""),
		fig("latency max, cutover windows", 5, data.InCut.Maxms, "ms", ""),
		fig("latency p99, during deploy/rollback commands", 5, data.InOps.P99ms, "ms", "includes GHC builds on the same 2 cores"),
		fig("latency p99, outside commands", 5, data.Outside.P99ms, "ms", fmt.Sprintf("%d requests", data.Outside.Requests)),
		fig("deploy command (build + rollout), median", 5, quantile(depT, 0.5), "s", ""),
		fig("rollback command, median", 5, quantile(rbT, 0.5), "s", ""),
	}
	if e.plots != "" {
		if err := plotZeroDowntime(e.plots, data, loadStart); err != nil {
			return fs, data, err
		}
	}
	return fs, data, nil
}

func perSecond(ss []sample, from time.Time) []secondStat {
	buckets := map[int][]sample{}
	last := 0
	for _, s := range ss {
		i := int(s.At.Sub(from).Seconds())
		buckets[i] = append(buckets[i], s)
		last = max(last, i)
	}
	var out []secondStat
	for i := 0; i <= last; i++ {
		b := buckets[i]
		if len(b) == 0 {
			continue
		}
		st := stats(b)
		out = append(out, secondStat{T: float64(i), P50ms: st.P50ms, P99ms: st.P99ms, Maxms: st.Maxms, Failed: st.Failed})
	}
	return out
}
