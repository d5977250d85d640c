package etcd

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Scheme prefixes the store value that selects this store.
const Scheme = "etcd://"

// ParseURL reads "etcd://HOST:PORT[,HOST:PORT...]" into its endpoints,
// "HOST:PORT" each, in order. IPv6 hosts are written in brackets
// ("[::1]:2379"). Anything else (another scheme, no host, a missing or bad
// port, a path, a query, user info, an empty or repeated entry) is an error
// that quotes the URL and says what is wrong.
func ParseURL(u string) ([]string, error) {
	bad := func(format string, a ...any) ([]string, error) {
		return nil, fmt.Errorf("etcd store URL %q: %s (want etcd://HOST:PORT[,HOST:PORT...])", u, fmt.Sprintf(format, a...))
	}
	if !strings.HasPrefix(u, Scheme) {
		if i := strings.Index(u, "://"); i >= 0 {
			return bad("scheme %q is not etcd", u[:i])
		}
		return bad("it does not start with %s", Scheme)
	}
	rest := u[len(Scheme):]
	if rest == "" {
		return bad("no host given")
	}
	if i := strings.IndexAny(rest, "/?#@ \t"); i >= 0 {
		switch rest[i] {
		case '/':
			return bad("unexpected path %q", rest[i:])
		case '?', '#':
			return bad("unexpected query or fragment %q", rest[i:])
		case '@':
			return bad("user info is not supported")
		default:
			return bad("unexpected blank")
		}
	}
	var eps []string
	seen := map[string]bool{}
	for i, hp := range strings.Split(rest, ",") {
		if hp == "" {
			return bad("endpoint %d is empty", i+1)
		}
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			return bad("endpoint %q: want HOST:PORT", hp)
		}
		if host == "" {
			return bad("endpoint %q has no host", hp)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port != strconv.Itoa(n) {
			return bad("endpoint %q: bad port %q (want 1-65535)", hp, port)
		}
		ep := net.JoinHostPort(host, port)
		if seen[ep] {
			return bad("endpoint %q given twice", hp)
		}
		seen[ep] = true
		eps = append(eps, ep)
	}
	return eps, nil
}
