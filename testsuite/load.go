package testsuite

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Load is the load generator of the zero-downtime tests: workers that send
// requests one after the other to their URL, from clients that never retry,
// until Stop, and keep every failure with its URL and time and every answer
// with the version that gave it. A failed request is counted, never retried.
type Load struct {
	o        LoadOptions
	ok       atomic.Int64
	mu       sync.Mutex
	failures []LoadFailure
	served   map[string]map[string]int64 // url -> version -> answers
	stop     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

// LoadOptions shape a Load.
type LoadOptions struct {
	// Workers per URL; 0: 1.
	Workers int
	// Send sends worker w's i-th request to url with c and returns the
	// version that answered; an error is a failed request. nil: PostHello.
	// (A url need not be HTTP: a TCP test's Send dials it as an address.)
	Send func(c *http.Client, url string, w, i int) (version string, err error)
	// Pause is how long a worker waits after an answered request (after a
	// failed one it waits 20ms at least: a dead node refuses at once).
	Pause time.Duration
	// Timeout of a request; 0: 10s.
	Timeout time.Duration
}

// LoadFailure is one failed request of a Load.
type LoadFailure struct {
	URL        string
	Start, End time.Time
	Err        string
}

func (f LoadFailure) String() string {
	return fmt.Sprintf("%s at %s: %s", f.URL, f.Start.Format("15:04:05.000"), f.Err)
}

// StartLoad starts o.Workers workers for each of urls; t's cleanup stops
// them. Each worker has a client of its own that keeps its connection
// alive, as real clients do.
func StartLoad(t testing.TB, urls []string, o LoadOptions) *Load {
	if o.Workers == 0 {
		o.Workers = 1
	}
	if o.Send == nil {
		o.Send = PostHello
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	l := &Load{o: o, served: map[string]map[string]int64{}, stop: make(chan struct{})}
	for _, u := range urls {
		l.served[u] = map[string]int64{}
		for w := 0; w < o.Workers; w++ {
			l.wg.Add(1)
			go l.worker(u, w)
		}
	}
	t.Cleanup(l.Stop)
	return l
}

func (l *Load) worker(u string, w int) {
	defer l.wg.Done()
	c := &http.Client{Timeout: l.o.Timeout, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Minute) // bounded, whatever happens
	for i := 0; time.Now().Before(deadline); i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		start := time.Now()
		v, err := l.o.Send(c, u, w, i)
		if err != nil {
			l.mu.Lock()
			l.failures = append(l.failures, LoadFailure{URL: u, Start: start, End: time.Now(), Err: err.Error()})
			l.mu.Unlock()
			time.Sleep(max(l.o.Pause, 20*time.Millisecond))
			continue
		}
		l.ok.Add(1)
		l.mu.Lock()
		l.served[u][v]++
		l.mu.Unlock()
		if l.o.Pause > 0 {
			time.Sleep(l.o.Pause)
		}
	}
}

// Stop stops the workers and waits for their last requests; it is safe to
// call again.
func (l *Load) Stop() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// OK counts the answered requests.
func (l *Load) OK() int64 { return l.ok.Load() }

// Failed counts the failed requests.
func (l *Load) Failed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.failures)
}

// Failures are the failed requests so far, in the order they ended.
func (l *Load) Failures() []LoadFailure {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LoadFailure(nil), l.failures...)
}

// Sample describes the first 20 failures, for a test's message.
func (l *Load) Sample() []string {
	var out []string
	for _, f := range l.Failures() {
		if len(out) == 20 {
			break
		}
		out = append(out, f.String())
	}
	return out
}

// Served counts the answers from url by the version that gave them.
func (l *Load) Served(url string) map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int64{}
	for v, n := range l.served[url] {
		out[v] = n
	}
	return out
}

// PostHello is a Load's default request, for examples/hello: a POST that
// must be answered 200 "hello from VERSION ..."; it returns VERSION.
func PostHello(c *http.Client, url string, _, _ int) (string, error) {
	code, body, err := Post(c, url, "ping")
	if err != nil {
		return "", err
	}
	rest, ok := strings.CutPrefix(body, "hello from ")
	if code != http.StatusOK || !ok || len(strings.Fields(rest)) == 0 {
		return "", fmt.Errorf("%d %q", code, body)
	}
	return strings.Fields(rest)[0], nil
}

// Post sends body to url with c in a POST that net/http cannot retry and
// returns the status and the answer's body. (net/http resends a request
// that it wrote none of on a reused connection when it can rewind the
// body, a POST too: without GetBody it cannot.)
func Post(c *http.Client, url, body string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.GetBody = nil
	req.Header.Set("Content-Type", "text/plain")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
