package main_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// load sends POST requests to every app URL from a client that never
// retries (net/http does not retry a POST; keep-alives stay on, as real
// clients have them), and keeps every failure with its URL and time, and
// the versions each URL answered from.
type load struct {
	ok       atomic.Int64
	mu       sync.Mutex
	failures []loadFailure
	seen     map[string]map[string]bool // url -> versions that answered
	stop     chan struct{}
	wg       sync.WaitGroup
}

type loadFailure struct {
	url        string
	start, end time.Time
	msg        string
}

func startLoad(t *testing.T, urls []string, perURL int) *load {
	l := &load{seen: map[string]map[string]bool{}, stop: make(chan struct{})}
	for _, u := range urls {
		l.seen[u] = map[string]bool{}
		for w := 0; w < perURL; w++ {
			l.wg.Add(1)
			go l.worker(u)
		}
	}
	t.Cleanup(l.halt)
	return l
}

func (l *load) worker(u string) {
	defer l.wg.Done()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Minute) // bounded, whatever happens
	for time.Now().Before(deadline) {
		select {
		case <-l.stop:
			return
		default:
		}
		start := time.Now()
		resp, err := c.Post(u, "text/plain", strings.NewReader("ping"))
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && (resp.StatusCode != http.StatusOK || !bytes.HasPrefix(body, []byte("hello from "))) {
				err = fmt.Errorf("%d %q", resp.StatusCode, body)
			}
		}
		if err != nil {
			l.mu.Lock()
			l.failures = append(l.failures, loadFailure{url: u, start: start, end: time.Now(), msg: err.Error()})
			l.mu.Unlock()
			time.Sleep(20 * time.Millisecond) // a dead node refuses at once: do not spin
			continue
		}
		l.ok.Add(1)
		v := strings.Fields(strings.TrimPrefix(string(body), "hello from "))[0]
		l.mu.Lock()
		l.seen[u][v] = true
		l.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *load) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// failed counts the failed requests.
func (l *load) failed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.failures)
}

// sample describes the first failures, for a test's message.
func (l *load) sample() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for i, f := range l.failures {
		if i == 20 {
			break
		}
		out = append(out, fmt.Sprintf("%s at %s: %s", f.url, f.start.Format("15:04:05.000"), f.msg))
	}
	return out
}
