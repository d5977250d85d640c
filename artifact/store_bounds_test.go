package artifact

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// freeBytes is what the file system of dir has free for unprivileged users.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	require.NoError(t, unix.Statfs(dir, &st))
	return int64(st.Bavail) * int64(st.Bsize)
}

// readSpy fails the test's expectations if it is read: a refusal by size
// must come before reading.
type readSpy struct {
	r    io.Reader
	read int64
}

func (s *readSpy) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.read += int64(n)
	return n, err
}

// failAtEOF yields its content and then, instead of io.EOF, an error: what
// a body whose signed hash does not match looks like to the store.
type failAtEOF struct{ r io.Reader }

var errAtEOF = errors.New("body sha256 does not match the signed hash")

func (f failAtEOF) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		err = errAtEOF
	}
	return n, err
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestStoreBounds(t *testing.T) {
	defer func(v int64) { freeCheckEvery = v }(freeCheckEvery)
	freeCheckEvery = 1 << 20
	content := bytes.Repeat([]byte("x"), 10<<10)
	want := sha(string(content))
	cases := []struct {
		name       string
		opts       func(t *testing.T, dir string) StoreOptions
		body       io.Reader
		size       int64 // declared, -1 unknown
		wantErr    error
		errText    []string // with %dir for the store's directory
		readAtMost int64    // -1: no bound checked
	}{
		{name: "fits, size known", body: bytes.NewReader(content), size: int64(len(content)), readAtMost: -1},
		{name: "fits, size unknown", body: bytes.NewReader(content), size: -1, readAtMost: -1},
		{name: "too large by its size: refused before reading",
			opts: func(*testing.T, string) StoreOptions { return StoreOptions{MaxSize: 4 << 10} },
			body: bytes.NewReader(content), size: int64(len(content)), wantErr: ErrTooLarge,
			errText: []string{"10240 bytes", "4096 bytes", "%dir"}, readAtMost: 0},
		{name: "too large as it streams: stops at the cap",
			opts: func(*testing.T, string) StoreOptions { return StoreOptions{MaxSize: 4 << 10} },
			body: zeros{}, size: -1, wantErr: ErrTooLarge,
			errText: []string{"more than the 4096 bytes", "%dir"}, readAtMost: 4<<10 + copyBufSize},
		{name: "longer than its declared size",
			body: bytes.NewReader(content), size: 100, errText: []string{"more than the 100 bytes declared"}, readAtMost: -1},
		{name: "shorter than its declared size",
			body: bytes.NewReader(content), size: 20 << 10, errText: []string{"10240 bytes", "20480 declared"}, readAtMost: -1},
		{name: "no room for its size: refused before reading",
			opts: func(t *testing.T, dir string) StoreOptions {
				return StoreOptions{Reserve: freeBytes(t, dir) - int64(len(content))/2}
			},
			body: bytes.NewReader(content), size: int64(len(content)), wantErr: ErrNoSpace,
			errText: []string{"10240 bytes", "free", "reserve", "%dir"}, readAtMost: 0},
		{name: "no room left as it streams",
			opts: func(t *testing.T, dir string) StoreOptions {
				return StoreOptions{Reserve: freeBytes(t, dir) - 3*freeCheckEvery}
			},
			body: zeros{}, size: -1, wantErr: ErrNoSpace,
			errText: []string{"free", "reserve", "%dir"}, readAtMost: 8 * freeCheckEvery},
		{name: "no room even before it starts",
			opts: func(t *testing.T, dir string) StoreOptions { return StoreOptions{Reserve: freeBytes(t, dir) + 1<<30} },
			body: bytes.NewReader(content), size: -1, wantErr: ErrNoSpace,
			errText: []string{"free", "%dir"}, readAtMost: 0},
		{name: "read error at EOF (a bad signature)",
			body: failAtEOF{bytes.NewReader(content)}, size: -1, wantErr: errAtEOF, readAtMost: -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var o StoreOptions
			if tc.opts != nil {
				o = tc.opts(t, dir)
			}
			s, err := OpenStoreWith(dir, o)
			require.NoError(t, err)
			spy := &readSpy{r: tc.body}
			d, n, err := s.PutSize(spy, want, tc.size)
			if tc.readAtMost >= 0 {
				require.LessOrEqual(t, spy.read, tc.readAtMost, "read too much before refusing")
			}
			if tc.wantErr == nil && tc.errText == nil {
				require.NoError(t, err)
				require.Equal(t, want, d)
				require.Equal(t, int64(len(content)), n)
				require.True(t, s.Has(want))
				return
			}
			require.Error(t, err)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			}
			for _, w := range tc.errText {
				require.Contains(t, err.Error(), strings.ReplaceAll(w, "%dir", s.Dir()))
			}
			t.Logf("refused: %v", err)
			// Nothing is visible, nothing is left behind.
			require.False(t, s.Has(want))
			blobs, err := s.List()
			require.NoError(t, err)
			require.Empty(t, blobs)
			des, err := os.ReadDir(s.Dir())
			require.NoError(t, err)
			require.Empty(t, des, "no temp file left")
		})
	}
}

func TestStoreRoom(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	require.NoError(t, err)
	require.Equal(t, int64(DefaultMaxSize), s.MaxSize())
	require.NoError(t, s.Room(1<<20))
	require.ErrorIs(t, s.Room(DefaultMaxSize+1), ErrTooLarge)
	free := freeBytes(t, dir)
	err = s.Room(free)
	if free <= DefaultMaxSize {
		require.ErrorIs(t, err, ErrNoSpace, "a blob that fills the disk leaves no reserve")
		require.Contains(t, err.Error(), fmt.Sprint(free))
	}
	unbounded, err := OpenStoreWith(dir, StoreOptions{MaxSize: -1, Reserve: -1})
	require.NoError(t, err)
	require.NoError(t, unbounded.Room(DefaultMaxSize+1))
	require.ErrorIs(t, unbounded.Room(free+1<<30), ErrNoSpace, "never more than is free")
}
