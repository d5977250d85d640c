package controlplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/worker"
)

// LogsOptions say what Logs shows.
type LogsOptions struct {
	Indexes []int  // the nodes; none: every node the store records
	Version string // the version's process (a prefix of the version); "": the one serving
	Since   time.Duration
	// Tail is how many of the last lines of each node: < 0 means 100, or
	// all with Since; 0 none (with Follow: only what comes).
	Tail   int
	Follow bool
	Agent  bool          // the agents' own logs instead of the app's
	Poll   time.Duration // how often Follow asks which process serves; default 1s
}

// Logs writes the app's output (stdout and stderr, as the nodes' agents
// keep it) of every node o names to w, each line prefixed "node N | ", or
// "node N VERSION | " when the node runs several versions or o.Version
// names one. The nodes are read at the same time, so their lines
// interleave (each line whole). A node with nothing to show, or whose
// agent does not answer, is reported on warn and the others go on; Logs
// then returns an error naming them, unless following.
//
// With o.Follow it goes on until ctx ends (then it returns nil): when a
// node's serving process changes (a deploy's cutover), it says so in a line
// and goes on with the new one's log, from its start; the old one's stream
// ends when that process stops.
func Logs(ctx context.Context, cfg deploy.Config, o LogsOptions, w, warn io.Writer) error {
	b, err := worker.Open(ctx, cfg, worker.Env{})
	if err != nil {
		return err
	}
	defer b.Close()
	st, err := b.Store.Load(ctx)
	if err != nil {
		return err
	}
	nodes, err := pickNodes(st.Nodes, o.Indexes)
	if err != nil {
		return err
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	out := &lineWriter{w: w}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []int
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nl := &nodeLogs{n: n, c: api.NewClient(n.AgentURL, n.ID, b.Signer), o: o, out: out}
			var err error
			if o.Agent {
				err = nl.agentLog(ctx)
			} else {
				err = nl.appLog(ctx)
			}
			if err != nil && ctx.Err() == nil {
				fmt.Fprintf(warn, "dflow: node %d: %v\n", n.Index, err)
				mu.Lock()
				failed = append(failed, n.Index)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 && ctx.Err() == nil {
		slices.Sort(failed)
		s := make([]string, len(failed))
		for i, x := range failed {
			s[i] = strconv.Itoa(x)
		}
		return fmt.Errorf("logs: no log from node %s (see above)", strings.Join(s, ", "))
	}
	return nil
}

// pickNodes is the nodes of indexes (all when none), by index.
func pickNodes(all []deploy.Node, indexes []int) ([]deploy.Node, error) {
	if len(all) == 0 {
		return nil, errors.New("logs: no nodes; `dflow set 3` makes three")
	}
	nodes := slices.Clone(all)
	slices.SortFunc(nodes, func(x, y deploy.Node) int { return x.Index - y.Index })
	if len(indexes) == 0 {
		return nodes, nil
	}
	var out []deploy.Node
	for _, i := range indexes {
		k := slices.IndexFunc(nodes, func(n deploy.Node) bool { return n.Index == i })
		if k < 0 {
			have := make([]string, len(nodes))
			for j, n := range nodes {
				have[j] = strconv.Itoa(n.Index)
			}
			return nil, fmt.Errorf("logs: no node %d; the nodes are %s", i, strings.Join(have, ", "))
		}
		if !slices.ContainsFunc(out, func(n deploy.Node) bool { return n.Index == i }) {
			out = append(out, nodes[k])
		}
	}
	return out, nil
}

// lineWriter writes whole lines from several goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) line(prefix, s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, prefix+strings.TrimSuffix(s, "\n")+"\n")
}

// nodeLogs follows one node.
type nodeLogs struct {
	n   deploy.Node
	c   *api.Client
	o   LogsOptions
	out *lineWriter

	mu      sync.Mutex
	several bool // show the version in the prefix
}

// first is what to ask for the first stream.
func (nl *nodeLogs) first() api.LogOptions {
	lo := api.LogOptions{Follow: nl.o.Follow}
	switch {
	case nl.o.Tail == 0:
		lo.Lines = api.NoLines
	case nl.o.Tail > 0:
		lo.Lines = nl.o.Tail
	case nl.o.Since > 0:
		lo.Lines = api.AllLines
	default:
		lo.Lines = 100
	}
	if nl.o.Since > 0 {
		lo.Since = time.Now().Add(-nl.o.Since)
	}
	return lo
}

func (nl *nodeLogs) prefix(version string) string {
	nl.mu.Lock()
	several := nl.several
	nl.mu.Unlock()
	if several && version != "" {
		return fmt.Sprintf("node %d %s | ", nl.n.Index, deploy.ShortVersion(version))
	}
	return fmt.Sprintf("node %d | ", nl.n.Index)
}

// copyLines writes the lines of r, each prefixed, until r ends.
func (nl *nodeLogs) copyLines(r io.Reader, version string) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		s, err := br.ReadString('\n')
		if s != "" {
			nl.out.line(nl.prefix(version), s)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// agentLog shows the node's agent's own log.
func (nl *nodeLogs) agentLog(ctx context.Context) error {
	lo := nl.first()
	for {
		rc, err := nl.c.StreamAgentLog(ctx, lo)
		if err == nil {
			err = nl.copyLines(rc, "")
			rc.Close()
		}
		if !nl.o.Follow || ctx.Err() != nil {
			return err
		}
		// The agent restarted, or the connection broke: go on with what
		// it writes from now on.
		if err != nil {
			nl.note(ctx, "the agent's log broke off (%v); trying again", err)
		}
		lo = api.LogOptions{Follow: true, Lines: api.NoLines}
		if !sleep(ctx, nl.o.Poll) {
			return nil
		}
	}
}

// note writes a line of dflow's own into the node's stream.
func (nl *nodeLogs) note(ctx context.Context, format string, args ...any) {
	if ctx.Err() == nil {
		nl.out.line(nl.prefix(""), "dflow: "+fmt.Sprintf(format, args...))
	}
}

// appLog shows the log of the node's serving process (or o.Version's),
// and with Follow goes on with the next one at each switch.
func (nl *nodeLogs) appLog(ctx context.Context) error {
	var streams sync.WaitGroup
	defer streams.Wait()
	cur := ""
	lastErr := ""
	waiting := false
	for {
		l, err := nl.processes(ctx)
		switch {
		case err != nil && !nl.o.Follow:
			return err
		case err != nil:
			if err.Error() != lastErr && ctx.Err() == nil {
				nl.note(ctx, "the agent does not answer (%v); trying again", err)
			}
			lastErr = err.Error()
		default:
			lastErr = ""
			p, ok := pickProcess(l, nl.o.Version)
			if !ok && !nl.o.Follow {
				if nl.o.Version != "" {
					return fmt.Errorf("no process of version %s here", nl.o.Version)
				}
				return errors.New("it runs no version")
			}
			if !ok && !waiting {
				nl.note(ctx, "runs no version yet; waiting for one")
				waiting = true
			}
			if ok && p.ID != cur {
				lo := nl.first()
				nl.mu.Lock()
				nl.several = nl.o.Version != "" || alive(l) > 1 || nl.several
				if cur != "" {
					// From its start: its first lines came before the switch.
					lo = api.LogOptions{Follow: true, Lines: api.AllLines}
					nl.several = true
				}
				nl.mu.Unlock()
				if cur != "" {
					nl.note(ctx, "now serving version %s (process %s); its log follows", deploy.ShortVersion(p.Version), p.ID)
				}
				cur = p.ID
				rc, err := nl.c.StreamLog(ctx, p.ID, lo)
				if err != nil {
					if !nl.o.Follow {
						return err
					}
					nl.note(ctx, "cannot read the log of %s: %v", p.ID, err)
					cur = "" // try again
				} else if !nl.o.Follow {
					defer rc.Close()
					return nl.copyLines(rc, p.Version)
				} else {
					streams.Add(1)
					go func() {
						defer streams.Done()
						defer rc.Close()
						if err := nl.copyLines(rc, p.Version); err != nil {
							nl.note(ctx, "the log of %s broke off: %v", p.ID, err)
						}
					}()
				}
			}
		}
		if !sleep(ctx, nl.o.Poll) {
			return nil
		}
	}
}

func (nl *nodeLogs) processes(ctx context.Context) (api.ProcessList, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return nl.c.Processes(qctx)
}

// pickProcess is the process whose log to show: version's (a prefix of
// the version; the newest alive, else the newest), else the serving one,
// else the newest alive, else the newest (to show why it ended).
func pickProcess(l api.ProcessList, version string) (api.ProcessInfo, bool) {
	ps := l.Processes // oldest first
	if version != "" {
		var match []api.ProcessInfo
		for _, p := range ps {
			if strings.HasPrefix(p.Version, version) {
				match = append(match, p)
			}
		}
		ps = match
	} else if i := slices.IndexFunc(ps, func(p api.ProcessInfo) bool { return p.ID == l.Serving }); l.Serving != "" && i >= 0 {
		return ps[i], true
	}
	for i := len(ps) - 1; i >= 0; i-- {
		if ps[i].Alive() {
			return ps[i], true
		}
	}
	if len(ps) > 0 {
		return ps[len(ps)-1], true
	}
	return api.ProcessInfo{}, false
}

// alive counts the processes that may still write.
func alive(l api.ProcessList) int {
	n := 0
	for _, p := range l.Processes {
		if p.Alive() {
			n++
		}
	}
	return n
}

// sleep waits d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
