package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Mode is how the proxy speaks to clients and upstreams.
type Mode string

// The modes.
const (
	ModeHTTP Mode = "http" // a reverse proxy: each request picks an upstream
	ModeTCP  Mode = "tcp"  // a relay: each connection picks an upstream
)

// Options configure a Proxy.
type Options struct {
	Listen string                           // host:port of the public port
	Mode   Mode                             // default ModeHTTP
	Log    func(format string, args ...any) // default log.Printf
}

// Proxy owns a public port and forwards it to the current Upstream.
type Proxy struct {
	o   Options
	cur atomic.Pointer[Upstream]

	mu      sync.Mutex
	started bool
	stopped bool
	ln      net.Listener
	srv     *http.Server      // http mode
	conns   map[net.Conn]bool // tcp mode: client connections being relayed
	wg      sync.WaitGroup    // serve loop and tcp relays
}

// New returns a proxy for o; it starts nothing.
func New(o Options) *Proxy {
	if o.Mode == "" {
		o.Mode = ModeHTTP
	}
	if o.Log == nil {
		o.Log = log.Printf
	}
	return &Proxy{o: o, conns: make(map[net.Conn]bool)}
}

// Start binds Listen and serves in the background.
func (p *Proxy) Start(ctx context.Context) error {
	if p.o.Mode != ModeHTTP && p.o.Mode != ModeTCP {
		return fmt.Errorf("start proxy on %s: unknown mode %q (want http or tcp)", p.o.Listen, p.o.Mode)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return fmt.Errorf("start proxy on %s: already started", p.o.Listen)
	}
	// Go already sets SO_REUSEADDR on listeners; say it explicitly, since
	// rebinding the public port at once after a restart depends on it.
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(ctx, "tcp", p.o.Listen)
	if err != nil {
		return fmt.Errorf("start proxy: %w", err)
	}
	p.ln, p.started = ln, true
	p.wg.Add(1)
	if p.o.Mode == ModeHTTP {
		p.srv = &http.Server{
			Handler:           http.HandlerFunc(p.serveHTTP),
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          log.New(logWriter(p.o.Log), "proxy: ", 0),
		}
		go func() {
			defer p.wg.Done()
			if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.o.Log("proxy %s: serve: %v", p.o.Listen, err)
			}
		}()
	} else {
		go func() {
			defer p.wg.Done()
			p.acceptTCP(ln)
		}()
	}
	p.o.Log("proxy: %s mode on %s", p.o.Mode, ln.Addr())
	return nil
}

// Stop closes the public port and waits for requests and connections in
// flight until ctx ends, then closes what is left. Safe to call twice, and
// before Start.
func (p *Proxy) Stop(ctx context.Context) error {
	p.mu.Lock()
	if !p.started || p.stopped {
		p.stopped = true
		p.mu.Unlock()
		return nil
	}
	p.stopped = true
	srv, ln := p.srv, p.ln
	p.mu.Unlock()

	var err error
	if srv != nil {
		if err = srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
			err = fmt.Errorf("stop proxy on %s: %w", p.o.Listen, err)
		}
	} else {
		_ = ln.Close()
		done := make(chan struct{})
		go func() { p.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("stop proxy on %s: %w", p.o.Listen, ctx.Err())
			p.mu.Lock()
			for c := range p.conns {
				_ = c.Close()
			}
			p.mu.Unlock()
		}
	}
	p.wg.Wait()
	if u := p.cur.Load(); u != nil {
		u.closeIdle()
	}
	return err
}

// Addr is the address the proxy listens on (Listen before Start).
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return p.ln.Addr().String()
	}
	return p.o.Listen
}

// Switch routes new requests (or connections) to upstream, a host:port such
// as "127.0.0.1:8123", and returns the previous upstream (nil if there was
// none): once Switch returns, the previous one gets nothing new, and its
// Drain tells when what it still has is done. Switch("") removes the
// upstream: http mode then answers 503, tcp mode closes new connections.
// Switching to the address already current changes nothing and returns nil
// (there is nothing to drain).
func (p *Proxy) Switch(upstream string) *Upstream {
	var u *Upstream
	if upstream != "" {
		if c := p.cur.Load(); c != nil && c.addr == upstream {
			return nil
		}
		u = newUpstream(upstream, p.o.Mode, p.o.Log)
	}
	return p.cur.Swap(u)
}

// Current is the upstream new requests go to, or nil.
func (p *Proxy) Current() *Upstream { return p.cur.Load() }

// acquire returns the current upstream with one more request counted in
// flight against it, or nil if there is none. The check after the increment
// is what makes the invariant hold: if it sees u still current, the increment
// happened before any Switch away from u, so a Drain after that Switch sees
// it; if not, the request is not sent to u and the count is given back.
func (p *Proxy) acquire() *Upstream {
	for {
		u := p.cur.Load()
		if u == nil {
			return nil
		}
		u.inflight.Add(1)
		if p.cur.Load() == u {
			return u
		}
		u.release()
	}
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	u := p.acquire()
	if u == nil {
		http.Error(w, "no version is serving", http.StatusServiceUnavailable)
		return
	}
	defer u.release()
	if r.Method == http.MethodConnect || r.Header.Get("Upgrade") != "" {
		u.rp.ServeHTTP(w, r)
		return
	}
	if err := u.fw.serve(w, r); err != nil {
		u.badGateway(w, r, err)
	}
}

func (p *Proxy) acceptTCP(ln net.Listener) {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			p.o.Log("proxy %s: accept: %v; retrying in %s", p.o.Listen, err, delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c] = true
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			p.relay(c)
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}()
	}
}

// relay connects client c to the current upstream and copies both ways until
// both directions have ended; the connection counts in flight against the
// upstream all that time.
func (p *Proxy) relay(c net.Conn) {
	defer c.Close()
	u := p.acquire()
	if u == nil {
		return
	}
	defer u.release()
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	up, err := d.Dial("tcp", u.addr)
	if err != nil {
		p.o.Log("proxy %s: upstream %s: %v", p.o.Listen, u.addr, err)
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close: tell dst nothing more comes, keep reading its answer.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		} else {
			_ = dst.Close()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// Upstream is one app version's address as the proxy sees it, with the count
// of requests (or connections) in flight to it.
type Upstream struct {
	addr      string
	inflight  atomic.Int64
	fw        *forwarder             // http mode: plain requests
	transport *http.Transport        // http mode: upgrades
	rp        *httputil.ReverseProxy // http mode: upgrades
	logf      func(string, ...any)

	mu   sync.Mutex
	wake chan struct{} // closed (and replaced) when inflight reaches 0
}

func newUpstream(addr string, mode Mode, logf func(string, ...any)) *Upstream {
	u := &Upstream{addr: addr, wake: make(chan struct{}), logf: logf}
	if mode != ModeHTTP {
		return u
	}
	u.fw = &forwarder{addr: addr}
	u.transport = &http.Transport{
		Proxy: nil, // never through an HTTP_PROXY from the agent's environment
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		// Shorter than any app server's keep-alive timeout we know of
		// (Node 5s, Warp 30s): a request sent on a connection the app is
		// closing at that moment fails, and a POST cannot be retried.
		IdleConnTimeout:       4 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass the app's encoding through untouched
	}
	target := &url.URL{Scheme: "http", Host: addr}
	u.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the app sees the host the client asked for
			r.SetXForwarded()
		},
		Transport:  u.transport,
		BufferPool: copyBuffers,
		// FlushInterval 0: the response is flushed at once for streams
		// (text/event-stream, or no Content-Length), buffered otherwise.
		ErrorLog:     log.New(logWriter(logf), "proxy: ", 0),
		ErrorHandler: u.badGateway,
	}
	return u
}

// badGateway answers 502 for a request the app did not answer.
func (u *Upstream) badGateway(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() == nil {
		u.logf("proxy: %s %s to upstream %s: %v", r.Method, r.URL.Path, u.addr, err)
	}
	http.Error(w, "bad gateway: the app did not answer", http.StatusBadGateway)
}

// Addr is the upstream's host:port.
func (u *Upstream) Addr() string { return u.addr }

// InFlight is how many requests (http) or connections (tcp) are using the
// upstream now.
func (u *Upstream) InFlight() int64 { return u.inflight.Load() }

func (u *Upstream) release() {
	if u.inflight.Add(-1) == 0 {
		u.mu.Lock()
		close(u.wake)
		u.wake = make(chan struct{})
		u.mu.Unlock()
	}
}

// Drain waits until nothing is in flight to u, or until ctx ends (the error
// then wraps ctx.Err()). Call it after switching away from u: the current
// upstream may never drain. Once drained, u's idle keep-alive connections
// are closed.
func (u *Upstream) Drain(ctx context.Context) error {
	for {
		u.mu.Lock()
		wake := u.wake
		u.mu.Unlock()
		if n := u.inflight.Load(); n <= 0 {
			break
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("drain upstream %s: %d still in flight: %w", u.addr, u.inflight.Load(), ctx.Err())
		}
	}
	u.closeIdle()
	return nil
}

func (u *Upstream) closeIdle() {
	if u.transport != nil {
		u.transport.CloseIdleConnections()
	}
	if u.fw != nil {
		u.fw.closeIdle()
	}
}

// copyBuffers are the 32 KiB buffers the proxies copy bodies through,
// reused rather than allocated per request.
var copyBuffers = &bufferPool{sync.Pool{New: func() any { return make([]byte, 32<<10) }}}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return b.p.Get().([]byte) }
func (b *bufferPool) Put(x []byte) { b.p.Put(x) }

// logWriter adapts a printf-style logger for http.Server.ErrorLog.
type logWriter func(format string, args ...any)

func (l logWriter) Write(b []byte) (int, error) {
	l("%s", trimNewline(b))
	return len(b), nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
	}
	return b
}
