package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Probe checks once whether an app is ready.
type Probe interface {
	// Check returns nil if the app answered well, or what was wrong.
	Check(ctx context.Context) error
}

// probeTimeout bounds one probe.
const probeTimeout = 2 * time.Second

// HTTPProbe GETs url; a 2xx answer is good. Redirects are not followed (a
// 3xx is not ready), and every probe uses a fresh connection, so a probe
// never passes on a connection opened before the app broke.
func HTTPProbe(url string) Probe {
	return httpProbe{url: url, c: &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: probeTimeout,
	}}
}

type httpProbe struct {
	url string
	c   *http.Client
}

func (p httpProbe) String() string { return "GET " + p.url }

func (p httpProbe) Check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return err
	}
	resp, err := p.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(body))
		if msg != "" {
			return fmt.Errorf("answered %s: %s", resp.Status, msg)
		}
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// TCPProbe connects to addr (host:port); an accepted connection is good.
func TCPProbe(addr string) Probe { return tcpProbe(addr) }

type tcpProbe string

func (p tcpProbe) String() string { return "connect tcp " + string(p) }

func (p tcpProbe) Check(ctx context.Context) error {
	d := net.Dialer{Timeout: probeTimeout}
	c, err := d.DialContext(ctx, "tcp", string(p))
	if err != nil {
		return err
	}
	return c.Close()
}

// GateOptions tune Gate; zero values take the defaults.
type GateOptions struct {
	Probes   int           // consecutive good probes needed; default 3
	Interval time.Duration // between probes; default 100ms
	Timeout  time.Duration // for the whole gate; default 30s
}

// GateError says why a process did not become ready.
type GateError struct {
	Probe  string // the probe, e.g. "GET http://127.0.0.1:8123/health"
	Reason string // what went wrong: the exit status, or the last probe error
}

func (e *GateError) Error() string {
	return fmt.Sprintf("not ready (%s): %s", e.Probe, e.Reason)
}

// Exiter is what Gate watches for an early exit: a *Proc, or anything that
// runs and exits like one (the agent's container versions).
type Exiter interface {
	Exited() <-chan struct{}
	ExitErr() error
}

// Gate waits until probe passes o.Probes times in a row, o.Interval apart,
// and returns nil. It returns a *GateError when the process exits first
// (at once, naming the exit status) or when o.Timeout passes (naming the
// last probe error). When ctx ends first, the error wraps ctx.Err() and is
// not a GateError: the app was not at fault.
func Gate(ctx context.Context, p Exiter, probe Probe, o GateOptions) error {
	if o.Probes <= 0 {
		o.Probes = 3
	}
	if o.Interval <= 0 {
		o.Interval = 100 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	name := fmt.Sprint(probe)
	deadline := time.NewTimer(o.Timeout)
	defer deadline.Stop()
	// pctx ends when the process exits, so a probe in progress does not
	// hold up the verdict.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.Exited():
			cancel()
		case <-pctx.Done():
		}
	}()
	exited := func() error {
		status := "exit status 0"
		if err := p.ExitErr(); err != nil {
			status = err.Error()
		}
		return &GateError{Probe: name, Reason: "process exited: " + status}
	}
	good := 0
	lastErr := errors.New("no probe finished")
	tick := time.NewTimer(0) // the first probe at once
	defer tick.Stop()
	for {
		select {
		case <-p.Exited():
			return exited()
		case <-ctx.Done():
			return fmt.Errorf("gate process %s: %w", gateName(p), ctx.Err())
		case <-deadline.C:
			return &GateError{Probe: name, Reason: fmt.Sprintf("not ready after %s (%d good probes in a row of %d needed); last probe: %v", o.Timeout, good, o.Probes, lastErr)}
		case <-tick.C:
		}
		cctx, ccancel := context.WithTimeout(pctx, probeTimeout)
		err := probe.Check(cctx)
		ccancel()
		select {
		case <-p.Exited():
			return exited()
		default:
		}
		if err != nil {
			good, lastErr = 0, err
		} else if good++; good >= o.Probes {
			return nil
		}
		tick.Reset(o.Interval)
	}
}

// gateName names what Gate watches in its errors.
func gateName(p Exiter) string {
	if pp, ok := p.(*Proc); ok {
		return pp.spec.ID
	}
	return fmt.Sprint(p)
}
