package controlplane

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/deploy"
	"golang.org/x/term"
)

// progressView shows a workflow's progress: plain lines (one per event)
// when w is not a terminal; the same lines with a live status line (step,
// a progress bar, paused) kept at the bottom on a terminal; JSON lines (one
// event per line) with -o json.
type progressView struct {
	w      io.Writer
	start  time.Time
	tty    bool
	asJSON bool
	status string // what is drawn at the bottom now ("" none)
}

func newProgressView(w io.Writer, start time.Time, asJSON bool) *progressView {
	v := &progressView{w: w, start: start, asJSON: asJSON}
	if f, ok := w.(*os.File); ok && !v.asJSON && os.Getenv("TERM") != "dumb" {
		v.tty = term.IsTerminal(int(f.Fd()))
	}
	return v
}

// show prints new events and redraws the status line.
func (v *progressView) show(p deploy.Progress, events []deploy.Event) {
	if v.asJSON {
		enc := json.NewEncoder(v.w)
		for _, e := range events {
			_ = enc.Encode(struct {
				Op   string `json:"op"`
				Step string `json:"step"`
				deploy.Event
			}{p.Op, p.Step, e})
		}
		return
	}
	v.clear()
	for _, e := range events {
		who := "cluster"
		if e.Node >= 0 {
			who = fmt.Sprintf("node %d", e.Node)
		}
		fmt.Fprintf(v.w, "  %6.2fs  %-8s %s\n", e.At.Sub(v.start).Seconds(), who, e.Msg)
	}
	if v.tty {
		v.status = statusLine(p, time.Since(v.start))
		fmt.Fprint(v.w, v.status)
	}
}

// statusLine is "  deploy: switch [#######.......] 2/3  12s (paused)".
func statusLine(p deploy.Progress, elapsed time.Duration) string {
	s := fmt.Sprintf("  %s: %s", p.Op, p.Step)
	if p.Total > 0 {
		const width = 20
		filled := width * p.Done / p.Total
		s += fmt.Sprintf(" [%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.Done, p.Total)
	}
	s += fmt.Sprintf("  %s", elapsed.Round(time.Second))
	if p.Paused {
		s += "  PAUSED (dflow deploy resume)"
	}
	for _, st := range p.Stuck {
		s += fmt.Sprintf("  STUCK on node %d (dflow deploy retry | skip-node %d | abort; %s in %s)", st.Node, st.Node, st.Action, max(time.Until(st.Deadline), 0).Round(time.Second))
	}
	return s
}

// clear erases the status line, if one is drawn.
func (v *progressView) clear() {
	if v.status != "" {
		fmt.Fprint(v.w, "\r\033[K")
		v.status = ""
	}
}

// close leaves the terminal clean for what follows.
func (v *progressView) close() { v.clear() }
