package testsuite

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// FreePort returns a TCP port that is free now on every one of ips
// (127.0.0.1 if none is given): it listens on port 0 and closes, so another
// process may take the port before the caller does. It fails t only through
// t.Fatalf, so bench's stand-in for testing.TB can call it too.
func FreePort(t testing.TB, ips ...string) int {
	t.Helper()
	if len(ips) == 0 {
		ips = []string{"127.0.0.1"}
	}
	for attempt := 0; attempt < 100; attempt++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatalf("testsuite: find a free port on %s: %v", ips[0], err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ok := true
		for _, ip := range ips[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		ln.Close()
		if ok {
			return port
		}
	}
	t.Fatalf("testsuite: no port free on all of %s", strings.Join(ips, ", "))
	return 0
}

// FreeAddr is "127.0.0.1:PORT" with a port that nothing listens on now (see
// FreePort).
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}
