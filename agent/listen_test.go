package agent

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseProcNetTCP(t *testing.T) {
	// As on little-endian Linux (x86-64, arm64): each 32-bit word of the
	// address in host byte order.
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A019 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:A019 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2 1 0000000000000000 100 0 0 10 0
   2: 0500000A:A019 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 3 1 0000000000000000 100 0 0 10 0
   3: 0100007F:A019 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 4 1 0000000000000000 100 0 0 10 0
   4: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5 1 0000000000000000 100 0 0 10 0
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:A019 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 6 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:A019 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 7 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:A019 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 8 1 0000000000000000 100 0 0 10 0
`
	got, err := parseProcNetTCP([]byte(tcp), 0xA019)
	require.NoError(t, err)
	require.Equal(t, []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:40985"),
		netip.MustParseAddrPort("0.0.0.0:40985"),
		netip.MustParseAddrPort("10.0.0.5:40985"),
	}, got, "listening sockets on the port only, not connections, not other ports")
	got, err = parseProcNetTCP([]byte(tcp6), 0xA019)
	require.NoError(t, err)
	require.Equal(t, []netip.AddrPort{
		netip.MustParseAddrPort("[::]:40985"),
		netip.MustParseAddrPort("[::1]:40985"),
		netip.MustParseAddrPort("[::ffff:127.0.0.1]:40985"),
	}, got)
	for _, ap := range got[1:] {
		require.True(t, ap.Addr().Unmap().IsLoopback(), "%s is loopback", ap)
	}

	_, err = parseProcNetTCP([]byte("   0: 0100007F:ZZZZ 00000000:0000 0A\n"), 1)
	require.Error(t, err)
	none, err := parseProcNetTCP(nil, 1)
	require.NoError(t, err)
	require.Empty(t, none)
}
