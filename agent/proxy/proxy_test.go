package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent/proxy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// backend is an upstream that counts what it serves and complains when it is
// used while it is supposed to be retired (switched away from and drained).
type backend struct {
	addr       string
	served     atomic.Int64
	retired    atomic.Bool
	violations atomic.Int64
}

func (b *backend) hit() {
	b.served.Add(1)
	if b.retired.Load() {
		b.violations.Add(1)
	}
}

// newHTTPBackend echoes the request body, prefixed by name.
func newHTTPBackend(t *testing.T, name string) *backend {
	b := &backend{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hit()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.Header.Get("X-Forwarded-For") == "" {
			http.Error(w, "no X-Forwarded-For", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%s:%s", name, body)
	}))
	t.Cleanup(srv.Close)
	b.addr = srv.Listener.Addr().String()
	return b
}

func startProxy(t *testing.T, mode proxy.Mode) *proxy.Proxy {
	t.Helper()
	p := proxy.New(proxy.Options{Listen: "127.0.0.1:0", Mode: mode, Log: t.Logf})
	require.NoError(t, p.Start(context.Background()))
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return p
}

// onlyReader hides the concrete type of its reader so that net/http cannot
// rewind the body, and so cannot retry the request.
type onlyReader struct{ io.Reader }

// noRetryClient never retries: a fresh transport, and callers send POSTs
// with testsuite.Post, which net/http cannot retry.
func noRetryClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
}

// switchUnderLoad switches 50 times between a and b while load runs,
// draining the old one each time and retiring it until it is switched to
// again; then it stops load and requires that none of its requests (unit
// names them: "requests", "connections") failed or reached a drained
// upstream, and that more than 1000 were answered.
func switchUnderLoad(t *testing.T, p *proxy.Proxy, a, b *backend, load *testsuite.Load, unit string) {
	t.Helper()
	start := time.Now()
	backends := []*backend{a, b}
	switches := 0
	for i := 0; i < 50; i++ {
		next := backends[i%2]
		next.retired.Store(false)
		prev := p.Switch(next.addr)
		switches++
		if prev != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			require.NoError(t, prev.Drain(ctx))
			cancel()
			require.Zero(t, prev.InFlight())
			backends[(i+1)%2].retired.Store(true)
		}
		time.Sleep(60 * time.Millisecond)
	}
	load.Stop()
	t.Logf("%d %s in %s with %d switches, %d failed; the upstreams served %d and %d",
		load.OK()+int64(load.Failed()), unit, time.Since(start).Round(time.Millisecond), switches, load.Failed(), a.served.Load(), b.served.Load())
	require.Empty(t, load.Sample())
	require.Zero(t, a.violations.Load()+b.violations.Load(), "a drained upstream got %s", unit)
	require.Greater(t, load.OK(), int64(1000))
}

func TestHTTPSwitchUnderLoad(t *testing.T) {
	a, b := newHTTPBackend(t, "a"), newHTTPBackend(t, "b")
	p := startProxy(t, proxy.ModeHTTP)
	url := "http://" + p.Addr() + "/echo"
	p.Switch(b.addr)
	load := testsuite.StartLoad(t, []string{url}, testsuite.LoadOptions{Workers: 32,
		Send: func(c *http.Client, url string, w, i int) (string, error) {
			body := fmt.Sprintf("w%d-%d", w, i)
			code, got, err := testsuite.Post(c, url, body)
			switch {
			case err != nil:
				return "", err
			case code != http.StatusOK:
				return "", fmt.Errorf("status %d: %s", code, got)
			case got != "a:"+body && got != "b:"+body:
				return "", fmt.Errorf("answer %q to %q", got, body)
			}
			return got[:1], nil
		}})
	switchUnderLoad(t, p, a, b, load, "requests")
}

func TestHTTPDrainWaitsForSlowRequest(t *testing.T) {
	var slowDone atomic.Bool
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		slowDone.Store(true)
		fmt.Fprint(w, "slow")
	}))
	defer slow.Close()
	fast := newHTTPBackend(t, "fast")
	p := startProxy(t, proxy.ModeHTTP)
	p.Switch(slow.Listener.Addr().String())

	res := make(chan string, 1)
	go func() {
		_, body, err := testsuite.Post(noRetryClient(), "http://"+p.Addr()+"/", "x")
		if err != nil {
			body = err.Error()
		}
		res <- body
	}()
	require.Eventually(t, func() bool { return p.Current().InFlight() == 1 }, 2*time.Second, time.Millisecond)
	prev := p.Switch(fast.addr)
	require.Equal(t, slow.Listener.Addr().String(), prev.Addr())
	started := time.Now()
	require.NoError(t, prev.Drain(context.Background()))
	require.True(t, slowDone.Load(), "Drain returned before the slow request ended")
	require.Greater(t, time.Since(started), 150*time.Millisecond)
	require.Equal(t, "slow", <-res)

	_, body, err := testsuite.Post(noRetryClient(), "http://"+p.Addr()+"/", "y")
	require.NoError(t, err)
	require.Equal(t, "fast:y", body)
}

func TestHTTPDrainBound(t *testing.T) {
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer stuck.Close()
	defer close(release)
	p := startProxy(t, proxy.ModeHTTP)
	p.Switch(stuck.Listener.Addr().String())
	go func() { _, _, _ = testsuite.Post(noRetryClient(), "http://"+p.Addr()+"/", "x") }()
	require.Eventually(t, func() bool { return p.Current().InFlight() == 1 }, 2*time.Second, time.Millisecond)
	prev := p.Switch("")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	started := time.Now()
	err := prev.Drain(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(started), time.Second)
	require.EqualValues(t, 1, prev.InFlight())
}

func TestHTTPNoUpstreamAndBadGateway(t *testing.T) {
	p := startProxy(t, proxy.ModeHTTP)
	require.Nil(t, p.Current())
	code, body, err := testsuite.Post(noRetryClient(), "http://"+p.Addr()+"/", "x")
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "no version is serving")

	// A port nobody listens on.
	dead := testsuite.FreeAddr(t)
	require.Nil(t, p.Switch(dead))
	require.Nil(t, p.Switch(dead), "switching to the current address is a no-op")
	code, body, err = testsuite.Post(noRetryClient(), "http://"+p.Addr()+"/", "x")
	require.NoError(t, err)
	require.Equal(t, http.StatusBadGateway, code)
	require.Contains(t, body, "bad gateway")
	require.Zero(t, p.Current().InFlight())

	prev := p.Switch("")
	require.Equal(t, dead, prev.Addr())
	code, _, err = testsuite.Post(noRetryClient(), "http://"+p.Addr()+"/", "x")
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, code)
}

func TestHTTPStreaming(t *testing.T) {
	next := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "one\n")
		w.(http.Flusher).Flush()
		<-next
		fmt.Fprint(w, "two\n")
	}))
	defer srv.Close()
	p := startProxy(t, proxy.ModeHTTP)
	p.Switch(srv.Listener.Addr().String())
	resp, err := noRetryClient().Get("http://" + p.Addr() + "/events")
	require.NoError(t, err)
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "one\n", line, "the first event arrives before the handler ends")
	close(next)
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "two\n", line)
}

// newEchoBackend is a plain TCP server that echoes everything until the
// client half-closes, then closes.
func newEchoBackend(t *testing.T) *backend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	b := &backend{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.hit()
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return b
}

func echoOnce(addr, msg string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(got) != msg {
		return fmt.Errorf("echo %q, sent %q", got, msg)
	}
	return nil
}

func TestTCPSwitchUnderLoad(t *testing.T) {
	a, b := newEchoBackend(t), newEchoBackend(t)
	p := startProxy(t, proxy.ModeTCP)
	p.Switch(a.addr)
	// The load's "URL" is the proxy's address: each request is a connection.
	load := testsuite.StartLoad(t, []string{p.Addr()}, testsuite.LoadOptions{Workers: 32,
		Send: func(_ *http.Client, addr string, w, i int) (string, error) {
			return "", echoOnce(addr, fmt.Sprintf("w%d-%d %s", w, i, strings.Repeat("x", 100)))
		}})
	switchUnderLoad(t, p, b, a, load, "connections")
}

func TestTCPNoUpstreamClosesAndDrainCountsConnections(t *testing.T) {
	p := startProxy(t, proxy.ModeTCP)
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "no upstream: the connection is closed")
	_ = c.Close()

	e := newEchoBackend(t)
	p.Switch(e.addr)
	c, err = net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "hi")
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	prev := p.Switch("")
	require.EqualValues(t, 1, prev.InFlight(), "an open connection is in flight")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, prev.Drain(ctx), context.DeadlineExceeded)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	require.NoError(t, prev.Drain(context.Background()))
}

func TestStartStop(t *testing.T) {
	p := proxy.New(proxy.Options{Listen: "127.0.0.1:0"})
	require.NoError(t, p.Stop(context.Background()), "stop before start")

	p = proxy.New(proxy.Options{Listen: "127.0.0.1:0", Log: t.Logf})
	require.NoError(t, p.Start(context.Background()))
	require.Error(t, p.Start(context.Background()), "start twice")
	addr := p.Addr()
	require.NoError(t, p.Stop(context.Background()))
	require.NoError(t, p.Stop(context.Background()))
	_, err := net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err, "the port is closed after Stop")

	// The port can be bound again at once.
	p = proxy.New(proxy.Options{Listen: addr, Mode: proxy.ModeTCP, Log: t.Logf})
	require.NoError(t, p.Start(context.Background()))
	require.NoError(t, p.Stop(context.Background()))
	require.NoError(t, p.Stop(context.Background()))

	err = proxy.New(proxy.Options{Listen: "127.0.0.1:0", Mode: "udp"}).Start(context.Background())
	require.Error(t, err)
	require.False(t, errors.Is(err, context.Canceled))
}

// TestHTTPForwarding checks what the app sees of a request and what the
// client sees of the answer, through the proxy's own keep-alive pool.
func TestHTTPForwarding(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			fmt.Fprint(w, "body")
			w.Header().Set("X-Sum", "42")
			return
		case "/stream":
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}
		w.Header().Set("Connection", "X-Private")
		w.Header().Set("X-Private", "hop")
		w.Header().Set("X-App", "yes")
		fmt.Fprintf(w, "%s %s host=%s xff=%s xfh=%s te=%q conn=%q hop=%q len=%d body=%s",
			r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"),
			r.TransferEncoding, r.Header.Get("Connection"), r.Header.Get("X-Hop"), r.ContentLength, body)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p := startProxy(t, proxy.ModeHTTP)
	p.Switch(srv.Listener.Addr().String())
	base := "http://" + p.Addr()
	c := noRetryClient()

	tests := []struct {
		name   string
		method string
		path   string
		body   io.Reader
		header map[string]string
		want   string // in the body
		check  func(t *testing.T, resp *http.Response, body string)
	}{
		{name: "post with length", method: "POST", path: "/a?b=c", body: strings.NewReader("hi"),
			want: "POST /a?b=c host=example.test xff=127.0.0.1 xfh=example.test te=[] conn=\"\" hop=\"\" len=2 body=hi"},
		{name: "chunked post", method: "POST", path: "/c", body: onlyReader{strings.NewReader("chunks")},
			want: "te=[\"chunked\"]"},
		{name: "hop-by-hop headers stay behind", method: "GET", path: "/h",
			header: map[string]string{"Connection": "X-Hop", "X-Hop": "1", "X-Forwarded-For": "6.6.6.6"},
			want:   "xff=127.0.0.1 xfh=example.test te=[] conn=\"\" hop=\"\"",
			check: func(t *testing.T, resp *http.Response, _ string) {
				require.Equal(t, "yes", resp.Header.Get("X-App"))
				require.Empty(t, resp.Header.Get("X-Private"), "a header the app's Connection named")
			}},
		{name: "head", method: "HEAD", path: "/", check: func(t *testing.T, resp *http.Response, body string) {
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Empty(t, body)
		}},
		{name: "trailer", method: "GET", path: "/trailer", want: "body", check: func(t *testing.T, resp *http.Response, _ string) {
			require.Equal(t, "42", resp.Trailer.Get("X-Sum"))
		}},
		{name: "chunked answer", method: "GET", path: "/stream", want: "GET /stream", check: func(t *testing.T, resp *http.Response, _ string) {
			require.Equal(t, []string{"chunked"}, resp.TransferEncoding)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.path, tc.body)
			require.NoError(t, err)
			req.Host = "example.test"
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := c.Do(req)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
			require.Contains(t, string(b), tc.want)
			if tc.check != nil {
				tc.check(t, resp, string(b))
			}
		})
	}
	require.EqualValues(t, 1, conns.Load(), "one keep-alive connection to the app carried every request")
}

// TestHTTPAppClosesIdleConnections: an app that closes keep-alive
// connections after a short idle time must not make a POST (which is never
// retried) fail.
func TestHTTPAppClosesIdleConnections(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, "ok")
	}))
	srv.Config.IdleTimeout = 20 * time.Millisecond
	srv.Start()
	defer srv.Close()
	p := startProxy(t, proxy.ModeHTTP)
	p.Switch(srv.Listener.Addr().String())
	c := noRetryClient()
	for i := 0; i < 5; i++ {
		code, body, err := testsuite.Post(c, "http://"+p.Addr()+"/", "x")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, body)
		time.Sleep(60 * time.Millisecond) // the app has closed the proxy's connection by now
	}
}

// TestHTTPClientGoesAway: a client that gives up on a request the app
// never answers does not leave it in flight, so the drain can end.
func TestHTTPClientGoesAway(t *testing.T) {
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer stuck.Close()
	defer close(release)
	p := startProxy(t, proxy.ModeHTTP)
	p.Switch(stuck.Listener.Addr().String())
	c := noRetryClient()
	c.Timeout = 100 * time.Millisecond
	_, _, err := testsuite.Post(c, "http://"+p.Addr()+"/", "x")
	require.Error(t, err)
	prev := p.Switch("")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	require.NoError(t, prev.Drain(ctx))
}

// TestHTTPUpgrade: a connection upgrade (WebSocket and the like) is relayed
// both ways and counts in flight until it ends.
func TestHTTPUpgrade(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo " + line)
		_ = brw.Flush()
	}))
	defer srv.Close()
	p := startProxy(t, proxy.ModeHTTP)
	p.Switch(srv.Listener.Addr().String())
	conn, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	require.EqualValues(t, 1, p.Current().InFlight())
	_, err = fmt.Fprint(conn, "hello\n")
	require.NoError(t, err)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "echo hello\n", line)
}
