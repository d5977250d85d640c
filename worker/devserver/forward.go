package devserver

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// forwarder serves a listener by copying each connection to and from a
// target address: how the frontend is exposed beyond loopback without
// binding Temporal itself (and its membership ports) there.
type forwarder struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	once   sync.Once
}

// Addr is the address the forwarder listens on.
func (f *forwarder) Addr() string { return f.ln.Addr().String() }

// Start accepts connections and forwards each to target until Close.
func (f *forwarder) Start(target string) {
	f.target = target
	f.wg.Add(1)
	go f.serve()
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(50 * time.Millisecond) // out of file descriptors, say
			continue
		}
		f.wg.Add(1)
		go f.pipe(c)
	}
}

// pipe copies between c and a new connection to the target, each direction
// until its end, and closes both.
func (f *forwarder) pipe(c net.Conn) {
	defer f.wg.Done()
	up, err := net.DialTimeout("tcp", f.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	if !f.track(c, up) {
		_ = c.Close()
		_ = up.Close()
		return
	}
	defer f.untrack(c, up)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, c)
		closeWrite(up)
	}()
	_, _ = io.Copy(c, up)
	closeWrite(c)
	<-done
	_ = c.Close()
	_ = up.Close()
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		return
	}
	_ = c.Close()
}

func (f *forwarder) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	if f.conns == nil {
		f.conns = map[net.Conn]struct{}{}
	}
	for _, c := range cs {
		f.conns[c] = struct{}{}
	}
	return true
}

func (f *forwarder) untrack(cs ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		delete(f.conns, c)
	}
}

// Close stops listening, cuts every forwarded connection and waits for
// their goroutines. Safe to call twice.
func (f *forwarder) Close() error {
	var err error
	f.once.Do(func() {
		f.mu.Lock()
		f.closed = true
		err = f.ln.Close()
		for c := range f.conns {
			_ = c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return err
}
