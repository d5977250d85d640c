package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// forwarder sends the requests of one upstream over HTTP/1.1 keep-alive
// connections it pools itself, reading the answer in the handler's own
// goroutine. net/http's Transport hands every request to a writer and a
// reader goroutine per connection and back over channels; on a node whose
// cores are busy those hand-offs were most of the proxy's added latency
// (docs/BENCHMARKS.md). Upgrades (WebSocket) and CONNECT go through
// httputil.ReverseProxy instead, which knows how to hijack.
//
// What it does not do, unlike the Transport: answer while the request body
// is still being sent (the whole body goes first; an app that answers early
// and closes still has its answer read and passed on when it sent it).
type forwarder struct {
	addr string

	mu     sync.Mutex
	idle   []*upConn // most recently used last
	closed bool      // closeIdle was called: put no more
}

// upConn is one keep-alive connection to the upstream.
type upConn struct {
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	idle time.Time // when it was put back
}

// Bounds of the forwarder's pool.
const (
	// idleTimeout is shorter than any app server's keep-alive timeout we
	// know of (Node 5s, Warp 30s): a request sent on a connection the app
	// is closing at that moment fails, and a POST cannot be retried.
	idleTimeout = 4 * time.Second
	maxIdle     = 256
	dialTimeout = 5 * time.Second
)

// get returns a pooled connection that is still open, or a new one.
func (f *forwarder) get(ctx context.Context) (*upConn, error) {
	now := time.Now()
	for {
		f.mu.Lock()
		// The oldest first: those past the idle timeout go.
		n := 0
		for n < len(f.idle) && now.Sub(f.idle[n].idle) >= idleTimeout {
			n++
		}
		stale := append([]*upConn(nil), f.idle[:n]...)
		f.idle = f.idle[n:]
		var pc *upConn
		if k := len(f.idle); k > 0 {
			pc = f.idle[k-1]
			f.idle[k-1] = nil
			f.idle = f.idle[:k-1]
		}
		f.mu.Unlock()
		for _, s := range stale {
			_ = s.c.Close()
		}
		if pc == nil {
			break
		}
		if pc.open() {
			return pc, nil
		}
		_ = pc.c.Close()
	}
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", f.addr)
	if err != nil {
		return nil, err
	}
	return &upConn{c: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10)}, nil
}

// put gives a connection whose last answer was read whole back to the pool.
func (f *forwarder) put(pc *upConn) {
	pc.idle = time.Now()
	f.mu.Lock()
	if f.closed || len(f.idle) >= maxIdle {
		f.mu.Unlock()
		_ = pc.c.Close()
		return
	}
	f.idle = append(f.idle, pc)
	f.mu.Unlock()
}

// closeIdle closes the pooled connections; connections in use are closed
// when their request ends.
func (f *forwarder) closeIdle() {
	f.mu.Lock()
	idle := f.idle
	f.idle, f.closed = nil, true
	f.mu.Unlock()
	for _, pc := range idle {
		_ = pc.c.Close()
	}
}

// open tells whether an idle connection can carry a request: the upstream
// has not closed it, nor sent anything unasked (which only a server about
// to close does). It peeks without blocking.
func (pc *upConn) open() bool {
	if pc.br.Buffered() > 0 {
		return false
	}
	sc, ok := pc.c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true // never wait
	})
	return err == nil && alive
}

// hopHeaders are meaningful for one connection only, and are not passed on
// (RFC 9110 section 7.6.1), beside those the Connection header names.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// copyHeader copies src into dst without the hop-by-hop headers.
func copyHeader(dst, src http.Header) {
	var named []string
	for _, v := range src["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				named = append(named, http.CanonicalHeaderKey(f))
			}
		}
	}
next:
	for k, vv := range src {
		for _, h := range hopHeaders {
			if k == h {
				continue next
			}
		}
		for _, h := range named {
			if k == h {
				continue next
			}
		}
		dst[k] = vv
	}
}

// outgoing is r as it goes to the upstream: the same method, URI, Host and
// body; no hop-by-hop headers, no Expect (the server side answers
// 100-continue to the client itself); X-Forwarded-For, -Host and -Proto
// set anew (any the client sent are dropped, as httputil.ReverseProxy's
// Rewrite does).
func outgoing(r *http.Request) *http.Request {
	out := new(http.Request)
	*out = *r
	out.Close = false
	out.Header = make(http.Header, len(r.Header)+3)
	copyHeader(out.Header, r.Header)
	for _, h := range []string{"Expect", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		delete(out.Header, h)
	}
	if te := r.Header["Te"]; len(te) > 0 && strings.EqualFold(strings.TrimSpace(te[0]), "trailers") {
		out.Header["Te"] = []string{"trailers"}
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // send none rather than Go's
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		out.Header["X-Forwarded-For"] = []string{ip}
	}
	out.Header["X-Forwarded-Host"] = []string{r.Host}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	out.Header["X-Forwarded-Proto"] = []string{proto}
	return out
}

// errBadGateway marks failures before any of the answer was sent: the
// client gets 502.
var errBadGateway = errors.New("bad gateway")

// serve forwards r to the upstream and its answer to w. An error wrapping
// errBadGateway means nothing was written to w yet.
func (f *forwarder) serve(w http.ResponseWriter, r *http.Request) error {
	out := outgoing(r)
	pc, err := f.get(r.Context())
	if err != nil {
		return fmt.Errorf("%w: %w", errBadGateway, err)
	}
	// A client that goes away unblocks the connection (which is then
	// closed, not pooled).
	stop := context.AfterFunc(r.Context(), func() { _ = pc.c.SetDeadline(time.Unix(1, 0)) })
	reuse := false
	defer func() {
		if !stop() || !reuse {
			_ = pc.c.Close()
			return
		}
		f.put(pc)
	}()

	werr := out.Write(pc.bw)
	if werr == nil {
		werr = pc.bw.Flush()
	}
	resp, err := http.ReadResponse(pc.br, out)
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
		resp, err = http.ReadResponse(pc.br, out) // informational answers (103) are not passed on
	}
	if err != nil {
		if werr != nil {
			err = werr
		}
		return fmt.Errorf("%w: %w", errBadGateway, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return fmt.Errorf("%w: the app switched protocols unasked", errBadGateway)
	}

	h := w.Header()
	copyHeader(h, resp.Header)
	if len(resp.Trailer) > 0 {
		keys := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	// Streams (no length, or server-sent events) are flushed as they come.
	stream := resp.ContentLength == -1 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	buf := copyBuffers.Get()
	rerr, cerr := copyBody(w, resp.Body, buf, stream)
	copyBuffers.Put(buf)
	if rerr != nil {
		// The answer is cut short: make the client see that too, rather
		// than a shorter answer that looks whole.
		panic(http.ErrAbortHandler)
	}
	if cerr != nil {
		return nil // the client went away; the connection is closed
	}
	for k, vv := range resp.Trailer {
		h[k] = vv
	}
	reuse = werr == nil && !resp.Close
	return nil
}

// copyBody copies src to w until src ends; rerr is a read error of src,
// werr a write error of w.
func copyBody(w http.ResponseWriter, src io.Reader, buf []byte, flush bool) (rerr, werr error) {
	fl, _ := w.(http.Flusher)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr = w.Write(buf[:n]); werr != nil {
				return nil, werr
			}
			if flush && fl != nil {
				fl.Flush()
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}
