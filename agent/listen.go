package agent

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// This file checks where an app process listens: it is told HOST=127.0.0.1,
// and one that listens beyond loopback anyway can be reached around the
// agent's proxy (before its gate passed, while it drains).

// procNetTCP are the kernel's tables of TCP sockets (Linux).
var procNetTCP = []string{"/proc/net/tcp", "/proc/net/tcp6"}

// listenWarning says where a process listens on port beyond loopback, or ""
// when it listens on loopback only or the kernel's tables cannot be read
// (not Linux). It looks at every socket of the agent's network namespace
// listening on port, which is the app's: the agent gave it that port.
func listenWarning(port int) string {
	var beyond []string
	for _, path := range procNetTCP {
		content, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		addrs, err := parseProcNetTCP(content, port)
		if err != nil {
			continue
		}
		for _, ap := range addrs {
			if !ap.Addr().Unmap().IsLoopback() {
				beyond = append(beyond, ap.String())
			}
		}
	}
	if len(beyond) == 0 {
		return ""
	}
	slices.Sort(beyond)
	return fmt.Sprintf("listens on %s, beyond loopback: it is reachable around the agent's proxy; bind to $HOST (%s)",
		strings.Join(slices.Compact(beyond), ", "), appHost)
}

// tcpListen is the state of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// parseProcNetTCP returns the local addresses of the sockets in LISTEN
// state on port in the content of /proc/net/tcp or /proc/net/tcp6. Lines
// look like
//
//	sl  local_address rem_address   st ...
//	0: 0100007F:1F90 00000000:0000 0A ...
//
// where an address is the hex of its bytes in 32-bit words of the host's
// byte order, and the port is big-endian hex.
func parseProcNetTCP(content []byte, port int) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	sc := bufio.NewScanner(bytes.NewReader(content))
	first := true
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if first {
			first = false
			if len(fields) > 0 && fields[0] == "sl" {
				continue // the header
			}
		}
		if len(fields) < 4 {
			continue
		}
		if fields[3] != tcpListen {
			continue
		}
		ap, err := parseProcAddr(fields[1])
		if err != nil {
			return nil, fmt.Errorf("parse socket table line %q: %w", sc.Text(), err)
		}
		if int(ap.Port()) == port {
			out = append(out, ap)
		}
	}
	return out, sc.Err()
}

// parseProcAddr parses "0100007F:1F90" (IPv4) or its 32-hex-digit IPv6 form.
func parseProcAddr(s string) (netip.AddrPort, error) {
	hexAddr, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, errors.New("no port")
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", hexPort, err)
	}
	raw, err := hex.DecodeString(hexAddr)
	if err != nil || len(raw) != 4 && len(raw) != 16 {
		return netip.AddrPort{}, fmt.Errorf("address %q: want 8 or 32 hex digits", hexAddr)
	}
	// Each 32-bit word was printed as a number in the host's byte order.
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr, uint16(port)), nil
}
