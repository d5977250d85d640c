package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/agent/auth"
	"github.com/distributive-flow/dflow/artifact"
	"golang.org/x/time/rate"
)

type copyRun struct {
	N          int     `json:"n"`
	Seconds    float64 `json:"seconds"`
	StarBound  float64 `json:"star_bound_s"` // N*S/B
	Ideal      float64 `json:"ideal_s"`      // S/B
	OriginSent int64   `json:"origin_sent_bytes"`
	Stored     int     `json:"stored"` // nodes that hold the bundle afterwards
}

type copyData struct {
	SizeBytes int64     `json:"size_bytes"`
	BytesPerS float64   `json:"bandwidth_bytes_per_s"`
	Parallel  int       `json:"parallel"`
	Runs      []copyRun `json:"runs"`
}

// copyParallel is how many nodes the origin sends to at once, as
// nodes.parallel does for CopyToNode (its maximum is 64).
const copyParallel = 16

// runCopy sends a bundle of random bytes (artifact.WriteBundleFile) to N
// local nodes the way dflow's copy step does (CopyToNode: HEAD, then a
// signed PUT that the agent checks against the digest), from this process,
// copyParallel nodes at a time, with every link capped at B: a token bucket
// on each node's download and one on the origin's upload. Time against the
// star bound N*S/B (the origin sends every byte) and the ideal S/B.
func runCopy(e *env) ([]Figure, any, error) {
	var ns []int
	for _, s := range strings.Split(e.opt.copyNodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, nil, fmt.Errorf("-copy-nodes: bad count %q", s)
		}
		ns = append(ns, n)
	}
	maxN := 0
	for _, n := range ns {
		maxN = max(maxN, n)
	}
	dir, err := os.MkdirTemp(e.work, "copy")
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "dflow.yaml"), []byte(fmt.Sprintf("name: bench-copy-%d\nnodes:\n  parallel: 16\n  max: 1000\n", os.Getpid())), 0o644); err != nil {
		return nil, nil, err
	}
	d := dflow{bin: e.bin, dir: dir}
	addCleanup(d.stop)
	d.must("set", strconv.Itoa(maxN))
	out, _, err := d.run("list", "-o", "json")
	if err != nil {
		return nil, nil, err
	}
	var nodes []struct {
		Index    int    `json:"index"`
		ID       string `json:"id"`
		AgentURL string `json:"agent_url"`
	}
	if err := json.Unmarshal([]byte(out), &nodes); err != nil {
		return nil, nil, fmt.Errorf("list -o json: %w", err)
	}
	signer, err := auth.LoadOrCreateKey(filepath.Join(dir, ".dflow"), "bench")
	if err != nil {
		return nil, nil, err
	}

	// The artifact: S bytes of random data, bundled.
	raw := filepath.Join(e.work, "random.bin")
	if err := writeRandom(raw, int64(e.opt.copyMB)*1e6); err != nil {
		return nil, nil, err
	}
	bundle := filepath.Join(e.work, "random.tar.zst")
	digest, size, err := artifact.WriteBundleFile(bundle, []artifact.File{{Path: "data/random.bin", Source: raw, Mode: 0o644}})
	if err != nil {
		return nil, nil, err
	}
	_ = os.Remove(raw)
	B := e.opt.copyBandwidth * 1e6
	data := copyData{SizeBytes: size, BytesPerS: B, Parallel: copyParallel}
	var fs []Figure
	for _, n := range ns {
		if n > len(nodes) {
			return fs, data, fmt.Errorf("copy: %d nodes asked, %d exist", n, len(nodes))
		}
		r := copyRun{N: n, StarBound: float64(n) * float64(size) / B, Ideal: float64(size) / B}
		origin := rate.NewLimiter(rate.Limit(B), 1<<20)
		var sent atomic.Int64
		var firstErr error
		var mu sync.Mutex
		sem := make(chan struct{}, copyParallel)
		var wg sync.WaitGroup
		t0 := time.Now()
		for _, nd := range nodes[:n] {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				f, err := os.Open(bundle)
				if err == nil {
					defer f.Close()
					body := &capped{r: f, limits: []*rate.Limiter{rate.NewLimiter(rate.Limit(B), 1<<20), origin}, sent: &sent}
					c := api.NewClient(nd.AgentURL, nd.ID, signer)
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
					err = c.PutArtifact(ctx, digest, body, size, false)
					cancel()
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("copy to node %d: %w", nd.Index, err)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		r.Seconds = time.Since(t0).Seconds()
		r.OriginSent = sent.Load()
		if firstErr != nil {
			return fs, data, firstErr
		}
		// Check, then free the nodes' disks for the next run.
		for _, nd := range nodes[:n] {
			c := api.NewClient(nd.AgentURL, nd.ID, signer)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if has, _ := c.HasArtifact(ctx, digest); has {
				r.Stored++
			}
			_ = c.RemoveArtifact(ctx, digest)
			cancel()
		}
		data.Runs = append(data.Runs, r)
		fmt.Printf("  N=%-3d %.1fs (star bound %.1fs, ideal %.1fs), origin sent %.0f MB, %d nodes hold it\n", n, r.Seconds, r.StarBound, r.Ideal, float64(r.OriginSent)/1e6, r.Stored)
		note := fmt.Sprintf("S = %.0f MB, B = %.0f MB/s; star bound N*S/B = %.1f s, ideal S/B = %.2f s", float64(size)/1e6, B/1e6, r.StarBound, r.Ideal)
		fs = append(fs, fig("copy time", n, r.Seconds, "s", note))
		fs = append(fs, fig("copy time / star bound", n, r.Seconds/r.StarBound, "x", ""))
		fs = append(fs, fig("copy time / ideal", n, r.Seconds/r.Ideal, "x", ""))
		fs = append(fs, fig("bytes the origin sent", n, float64(r.OriginSent)/1e6, "MB", fmt.Sprintf("%.1f x S", float64(r.OriginSent)/float64(size))))
		fs = append(fs, atLeast("nodes holding the verified bundle", n, float64(r.Stored), "", float64(n), ""))
	}
	if e.plots != "" {
		if err := plotCopy(e.plots, data); err != nil {
			return fs, data, err
		}
	}
	return fs, data, nil
}

// capped reads r through token buckets (every one must allow each chunk)
// and counts what it read.
type capped struct {
	r      io.Reader
	limits []*rate.Limiter
	sent   *atomic.Int64
}

func (c *capped) Read(p []byte) (int, error) {
	if len(p) > 256<<10 {
		p = p[:256<<10]
	}
	n, err := c.r.Read(p)
	for _, l := range c.limits {
		if werr := l.WaitN(context.Background(), n); werr != nil && err == nil {
			err = werr
		}
	}
	c.sent.Add(int64(n))
	return n, err
}

func writeRandom(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
