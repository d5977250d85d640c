package main

import (
	"net/http"
	"sort"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// sample is one request of a load run.
type sample struct {
	At  time.Time     // when it was sent
	Lat time.Duration // until its response was read (or it failed)
	OK  bool          // 200 and no error
	URL string
	Err string // the error or the status, when not OK
}

func (s sample) end() time.Time { return s.At.Add(s.Lat) }

// loadOptions shape a vegeta attack. Every request is a POST with a body,
// which net/http never retries, and vegeta retries nothing: a failed
// request is counted as failed.
type loadOptions struct {
	Rate     int           // requests per second; 0: as fast as Workers allow
	Workers  int           // fixed pool (with Rate 0) or initial pool
	Duration time.Duration // 0: until stop is closed
}

func postTargets(urls []string) []vegeta.Target {
	var ts []vegeta.Target
	for _, u := range urls {
		ts = append(ts, vegeta.Target{Method: http.MethodPost, URL: u, Body: []byte("ping"),
			Header: http.Header{"Content-Type": []string{"text/plain"}}})
	}
	return ts
}

// attack sends POSTs round robin to urls and returns every request's sample.
func attack(urls []string, o loadOptions, stop <-chan struct{}) []sample {
	workers := uint64(max(o.Workers, 1))
	opts := []func(*vegeta.Attacker){
		vegeta.Workers(workers), vegeta.KeepAlive(true), vegeta.Timeout(10 * time.Second),
		vegeta.Redirects(vegeta.NoFollow), vegeta.HTTP2(false), vegeta.MaxBody(64),
		vegeta.Connections(int(workers) + 16),
	}
	if o.Rate == 0 {
		opts = append(opts, vegeta.MaxWorkers(workers), vegeta.MaxConnections(int(workers)))
	}
	a := vegeta.NewAttacker(opts...)
	rate := vegeta.Rate{Freq: o.Rate, Per: time.Second}
	results := a.Attack(vegeta.NewStaticTargeter(postTargets(urls)...), rate, o.Duration, "bench")
	if stop != nil {
		go func() { <-stop; a.Stop() }()
	}
	var out []sample
	for r := range results {
		s := sample{At: r.Timestamp, Lat: r.Latency, URL: r.URL, OK: r.Code == http.StatusOK && r.Error == ""}
		if !s.OK {
			s.Err = r.Error
			if s.Err == "" {
				s.Err = http.StatusText(int(r.Code)) + ": " + string(r.Body)
			}
		}
		out = append(out, s)
	}
	return out
}

// latencyStats summarises samples.
type latencyStats struct {
	Requests int     `json:"requests"`
	Failed   int     `json:"failed"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	Maxms    float64 `json:"max_ms"`
	PerSec   float64 `json:"per_second"` // successful requests per second of the run
}

func stats(ss []sample) latencyStats {
	st := latencyStats{Requests: len(ss)}
	if len(ss) == 0 {
		return st
	}
	lat := make([]float64, 0, len(ss))
	first, last := ss[0].At, ss[0].end()
	for _, s := range ss {
		if !s.OK {
			st.Failed++
		}
		lat = append(lat, float64(s.Lat)/1e6)
		if s.At.Before(first) {
			first = s.At
		}
		if s.end().After(last) {
			last = s.end()
		}
	}
	sort.Float64s(lat)
	st.P50ms, st.P99ms, st.Maxms = quantile(lat, 0.5), quantile(lat, 0.99), lat[len(lat)-1]
	if d := last.Sub(first).Seconds(); d > 0 {
		st.PerSec = float64(st.Requests-st.Failed) / d
	}
	return st
}

// quantile of sorted xs (nearest rank).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(q*float64(len(xs))+0.5) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}
