// Package fakeapp turns a test binary into a small app for tests of the
// process supervisor and the agent: tests re-exec their own binary with Env
// set, and TestMain calls ServeIfAsked first. No shell scripts, no mocks.
//
// The app serves HTTP on $HOST:$PORT (every address when HOST is unset, or
// DFLOW_FAKE_LISTEN_HOST instead of HOST when that is set: an app that
// ignores HOST, for the agent's listen check): GET /health answers 200 "ok" (503 when
// DFLOW_FAKE_HEALTH=fail); GET /env answers the environment, one KEY=VALUE a
// line; any other request answers "$DFLOW_VERSION:<request body>". It prints
// a line to stdout when it listens and when it stops. On SIGTERM it finishes
// the requests in flight and exits 0, unless DFLOW_FAKE_IGNORE_TERM=1.
// DFLOW_FAKE_EXIT=N makes it exit with status N at once.
// DFLOW_FAKE_HEALTHY_FOR=N makes /health answer 503 after its first N
// answers: through a readiness gate of N probes, then unhealthy.
package fakeapp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Env is the variable that makes a test binary act as the fake app.
const Env = "DFLOW_FAKE_APP"

// ServeIfAsked runs the fake app and exits when Env is "1"; otherwise it
// returns at once.
func ServeIfAsked() {
	if os.Getenv(Env) != "1" {
		return
	}
	os.Exit(serve())
}

func serve() int {
	fmt.Printf("fake app %s starting, pid %d\n", os.Getenv("DFLOW_VERSION"), os.Getpid())
	if s := os.Getenv("DFLOW_FAKE_EXIT"); s != "" {
		code, _ := strconv.Atoi(s)
		fmt.Printf("fake app exiting with status %d as asked\n", code)
		return code
	}
	term := make(chan os.Signal, 1)
	if os.Getenv("DFLOW_FAKE_IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
		signal.Notify(term, os.Interrupt)
	} else {
		signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	}
	version := os.Getenv("DFLOW_VERSION")
	mux := http.NewServeMux()
	var healthChecks atomic.Int64
	healthyFor, _ := strconv.ParseInt(os.Getenv("DFLOW_FAKE_HEALTHY_FOR"), 10, 64)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if n := healthChecks.Add(1); healthyFor > 0 && n > healthyFor {
			http.Error(w, "unhealthy after the readiness gate, on purpose", http.StatusServiceUnavailable)
			return
		}
		if os.Getenv("DFLOW_FAKE_HEALTH") == "fail" {
			http.Error(w, "unhealthy on purpose", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, strings.Join(os.Environ(), "\n"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d)
		}
		fmt.Fprintf(w, "%s:%s", version, body)
	})
	host := os.Getenv("HOST")
	if h, ok := os.LookupEnv("DFLOW_FAKE_LISTEN_HOST"); ok {
		host = h
	}
	srv := &http.Server{Addr: net.JoinHostPort(host, os.Getenv("PORT")), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	fmt.Printf("fake app %s listening on port %s (%s)\n", version, os.Getenv("PORT"), srv.Addr)
	select {
	case err := <-errc:
		fmt.Printf("fake app: %v\n", err)
		return 1
	case <-term:
	}
	fmt.Printf("fake app %s stopping\n", version)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	return 0
}
