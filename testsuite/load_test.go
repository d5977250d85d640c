package testsuite_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// TestLoad: answers are counted by the version that gave them, a dead URL's
// requests are failures with their URL, and nothing is sent after Stop.
func TestLoad(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || string(b) != "ping" {
			http.Error(w, "want a POST of ping", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "hello from v%d at %s\n", got.Load()%2, r.URL.Path)
	}))
	defer srv.Close()
	dead := "http://" + testsuite.FreeAddr(t) + "/"

	l := testsuite.StartLoad(t, []string{srv.URL, dead}, testsuite.LoadOptions{Workers: 2, Pause: time.Millisecond})
	require.Eventually(t, func() bool { return l.OK() > 50 && l.Failed() > 2 }, 10*time.Second, 10*time.Millisecond)
	l.Stop()
	l.Stop()
	sent := got.Load()
	time.Sleep(50 * time.Millisecond)
	require.Equal(t, sent, got.Load(), "nothing is sent after Stop")

	served := l.Served(srv.URL)
	require.Len(t, served, 2, "%v", served)
	require.Equal(t, l.OK(), served["v0"]+served["v1"])
	require.Empty(t, l.Served(dead))
	for _, f := range l.Failures() {
		require.Equal(t, dead, f.URL)
		require.False(t, f.End.Before(f.Start))
		require.Contains(t, f.String(), dead+" at ")
	}
	require.LessOrEqual(t, len(l.Sample()), 20)
	require.NotEmpty(t, l.Sample())
}

func TestPostHelloRefusesOtherAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "goodbye")
	}))
	defer srv.Close()
	_, err := testsuite.PostHello(http.DefaultClient, srv.URL, 0, 0)
	require.ErrorContains(t, err, `200 "goodbye"`)
}
