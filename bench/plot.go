package main

import (
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot/vg/draw"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var (
	blue    = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	orange  = color.RGBA{R: 255, G: 127, B: 14, A: 255}
	green   = color.RGBA{R: 44, G: 160, B: 44, A: 255}
	red     = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	purple  = color.RGBA{R: 148, G: 103, B: 189, A: 255}
	brown   = color.RGBA{R: 140, G: 86, B: 75, A: 255}
	grey    = color.RGBA{R: 127, G: 127, B: 127, A: 255}
	palette = []color.Color{blue, orange, green, red, purple, brown, grey}
)

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text, p.Y.Label.Text = x, y
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p
}

func save(p *plot.Plot, dir, name string, w, h vg.Length) error {
	path := filepath.Join(dir, name)
	if err := p.Save(w, h, path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	fmt.Printf("  plot: %s\n", path)
	return nil
}

// series is one line of a plot over runs of type R: its name in the
// legend, its colour and a run's Y.
type series[R any] struct {
	name string
	c    color.Color
	f    func(R) float64
}

// lines adds a line with points for each of ss over runs, at X x(run).
func lines[R any](p *plot.Plot, runs []R, x func(R) int, ss []series[R]) error {
	for _, s := range ss {
		var xy plotter.XYs
		for _, r := range runs {
			xy = append(xy, plotter.XY{X: float64(x(r)), Y: s.f(r)})
		}
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return err
		}
		l.Color, pts.Color = s.c, s.c
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	return nil
}

// bars adds grouped bar charts: one group per label, one bar per series.
func bars(p *plot.Plot, labels []string, series []string, values [][]float64) error {
	width := vg.Points(28)
	for i, name := range series {
		b, err := plotter.NewBarChart(plotter.Values(values[i]), width)
		if err != nil {
			return err
		}
		b.Color = palette[i%len(palette)]
		b.LineStyle.Width = 0
		b.Offset = width * vg.Length(float64(i)-float64(len(series)-1)/2)
		p.Add(b)
		p.Legend.Add(name, b)
	}
	p.NominalX(labels...)
	p.X.Min, p.X.Max = -0.6, float64(len(labels))-0.4
	top := 0.0
	for _, v := range values {
		for _, x := range v {
			top = max(top, x)
		}
	}
	p.Y.Max = top * 1.25 // room for the legend
	return nil
}

// plotProxy: throughput and latency, direct against proxied.
func plotProxy(dir string, runs []proxyRun, conc int) error {
	get := func(handler, path, load string) latencyStats {
		for _, r := range runs {
			if r.Handler == handler && r.Path == path && r.Load == load {
				return r.Stats
			}
		}
		return latencyStats{}
	}
	hs := []string{"trivial", "1ms"}
	p := newPlot(fmt.Sprintf("Proxy overhead: throughput (closed loop, %d connections)", conc), "handler", "requests/s")
	var vals [][]float64
	for _, path := range proxyPaths {
		var v []float64
		for _, h := range hs {
			v = append(v, get(h, path, fmt.Sprintf("max%d", conc)).PerSec)
		}
		vals = append(vals, v)
	}
	if err := bars(p, []string{"trivial handler", "1 ms handler"}, []string{"direct", "through agent/proxy (http)", "tcp relay (reference)"}, vals); err != nil {
		return err
	}
	p.Y.Min = 0
	if err := save(p, dir, "bench-proxy-throughput.png", 14*vg.Centimeter, 10*vg.Centimeter); err != nil {
		return err
	}

	p = newPlot("Proxy overhead: latency at a fixed rate", "", "milliseconds")
	var labels []string
	vals = [][]float64{nil, nil}
	for _, h := range hs {
		for _, path := range proxyPaths {
			st := get(h, path, "rate")
			labels = append(labels, h+"\n"+path)
			vals[0] = append(vals[0], st.P50ms)
			vals[1] = append(vals[1], st.P99ms)
		}
	}
	if err := bars(p, labels, []string{"p50", "p99"}, vals); err != nil {
		return err
	}
	p.Y.Min = 0
	return save(p, dir, "bench-proxy-latency.png", 16*vg.Centimeter, 10*vg.Centimeter)
}

// plotZeroDowntime: latency per second under load, with the rollouts.
func plotZeroDowntime(dir string, d zdData, from time.Time) error {
	p := newPlot(fmt.Sprintf("Zero downtime: %d req/s across 5 nodes, deploy/rollback cycles", d.Rate), "seconds since the load started", "latency (ms, log scale)")
	p.Legend.Left = true
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	line := func(name string, c color.Color, f func(secondStat) float64) error {
		var xy plotter.XYs
		for _, s := range d.Seconds {
			xy = append(xy, plotter.XY{X: s.T, Y: max(f(s), 0.05)})
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.Color = c
		p.Add(l)
		p.Legend.Add(name, l)
		return nil
	}
	if err := line("max per second", grey, func(s secondStat) float64 { return s.Maxms }); err != nil {
		return err
	}
	if err := line("p99 per second", orange, func(s secondStat) float64 { return s.P99ms }); err != nil {
		return err
	}
	if err := line("p50 per second", blue, func(s secondStat) float64 { return s.P50ms }); err != nil {
		return err
	}
	// The cutovers, as marks at the bottom; the commands as bars at the top.
	var cut plotter.XYs
	for _, w := range d.Cutovers {
		cut = append(cut, plotter.XY{X: w.From.Sub(from).Seconds(), Y: 0.1})
	}
	if len(cut) > 0 {
		sc, err := plotter.NewScatter(cut)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Color, sc.GlyphStyle.Shape = red, draw.PlusGlyph{}
		p.Add(sc)
		p.Legend.Add("cutover on a node (start to stop of the old)", sc)
	}
	for _, op := range d.Ops {
		y := 3000.0
		c := green
		if op.Op == "rollback" {
			y, c = 2000, purple
		}
		l, err := plotter.NewLine(plotter.XYs{{X: op.Start.Sub(from).Seconds(), Y: y}, {X: op.End.Sub(from).Seconds(), Y: y}})
		if err != nil {
			return err
		}
		l.Color, l.Width = c, vg.Points(4)
		p.Add(l)
	}
	failed := 0
	for _, s := range d.Seconds {
		failed += s.Failed
	}
	p.Title.Text += fmt.Sprintf("\n%d requests, %d failed; green: deploy (build + rollout), purple: rollback", d.Overall.Requests, failed)
	p.Y.Min, p.Y.Max = 0.05, 5000
	return save(p, dir, "bench-zerodowntime.png", 22*vg.Centimeter, 11*vg.Centimeter)
}

// plotRollout: rollout time against the node count.
func plotRollout(dir string, d rolloutData) error {
	runs := append([]rolloutRun(nil), d.Runs...)
	sort.Slice(runs, func(i, j int) bool { return runs[i].N < runs[j].N })
	p := newPlot("Rollout of examples/hello to N local nodes (deploy.parallel 1)", "nodes", "seconds")
	p.Legend.Left = true
	if err := lines(p, runs, func(r rolloutRun) int { return r.N }, []series[rolloutRun]{
		{"deploy command (build + copy + node steps)", grey, func(r rolloutRun) float64 { return r.Command }},
		{"node steps (start, gate, switch, drain)", blue, func(r rolloutRun) float64 { return r.Switch }},
		{"build", green, func(r rolloutRun) float64 { return r.Build }},
		{"copy", orange, func(r rolloutRun) float64 { return r.Copy }},
	}); err != nil {
		return err
	}
	if pr := d.ParallelRun; pr != nil {
		sc, err := plotter.NewScatter(plotter.XYs{{X: float64(pr.N), Y: pr.Rollout}})
		if err != nil {
			return err
		}
		sc.GlyphStyle.Color, sc.GlyphStyle.Shape, sc.GlyphStyle.Radius = red, draw.BoxGlyph{}, vg.Points(4)
		p.Add(sc)
		p.Legend.Add(fmt.Sprintf("copy + node steps, deploy.parallel 25 (N=%d)", pr.N), sc)
	}
	p.Y.Min = 0
	return save(p, dir, "bench-rollout.png", 18*vg.Centimeter, 11*vg.Centimeter)
}

// plotCopy: copy time against the node count, with the star bound and the ideal.
func plotCopy(dir string, d copyData) error {
	p := newPlot(fmt.Sprintf("Copy of a %.0f MB bundle, every link capped at %.0f MB/s", float64(d.SizeBytes)/1e6, d.BytesPerS/1e6), "nodes", "seconds")
	p.Legend.Left = true
	if err := lines(p, d.Runs, func(r copyRun) int { return r.N }, []series[copyRun]{
		{"measured (star: the origin sends to every node)", blue, func(r copyRun) float64 { return r.Seconds }},
		{"star bound N*S/B", red, func(r copyRun) float64 { return r.StarBound }},
		{"ideal S/B", green, func(r copyRun) float64 { return r.Ideal }},
	}); err != nil {
		return err
	}
	p.Y.Min = 0
	return save(p, dir, "bench-copy.png", 16*vg.Centimeter, 10*vg.Centimeter)
}

// replot draws the plots again from the JSON reports in out (-replot).
func replot(out, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	read := func(name string, data any) (bool, error) {
		b, err := os.ReadFile(filepath.Join(out, name+".json"))
		if os.IsNotExist(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		var r struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return false, fmt.Errorf("%s.json: %w", name, err)
		}
		if len(r.Data) == 0 || string(r.Data) == "null" {
			return false, nil
		}
		return true, json.Unmarshal(r.Data, data)
	}
	var runs []proxyRun
	if ok, err := read("proxy", &runs); err != nil {
		return err
	} else if ok {
		conc := 0
		for _, r := range runs {
			if n, err := strconv.Atoi(strings.TrimPrefix(r.Load, "max")); err == nil {
				conc = max(conc, n)
			}
		}
		if err := plotProxy(dir, runs, conc); err != nil {
			return err
		}
	}
	var zd zdData
	if ok, err := read("zerodowntime", &zd); err != nil {
		return err
	} else if ok {
		from := zd.LoadStart
		if from.IsZero() && len(zd.Ops) > 0 {
			from = zd.Ops[0].Start.Add(-3 * time.Second)
		}
		if err := plotZeroDowntime(dir, zd, from); err != nil {
			return err
		}
	}
	var ro rolloutData
	if ok, err := read("rollout", &ro); err != nil {
		return err
	} else if ok {
		if err := plotRollout(dir, ro); err != nil {
			return err
		}
	}
	var cp copyData
	if ok, err := read("copy", &cp); err != nil {
		return err
	} else if ok {
		if err := plotCopy(dir, cp); err != nil {
			return err
		}
	}
	return nil
}
