package artifact

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sha(s string) string { b := sha256.Sum256([]byte(s)); return hex.EncodeToString(b[:]) }

func TestValidDigest(t *testing.T) {
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{sha("x"), true},
		{strings.ToUpper(sha("x")), false},
		{sha("x")[:63], false},
		{sha("x") + "0", false},
		{"", false},
		{"../../../../etc/passwd" + strings.Repeat("0", 42), false},
		{strings.Repeat("g", 64), false},
	} {
		assert.Equal(t, tc.ok, ValidDigest(tc.s), tc.s)
	}
}

func TestStorePut(t *testing.T) {
	content := "the blob"
	for _, tc := range []struct {
		name    string
		want    string
		wantErr error
		errText string
	}{
		{"right want", sha(content), nil, ""},
		{"empty want", "", nil, ""},
		{"wrong want", sha("other"), ErrDigestMismatch, sha(content)},
		{"invalid want", "abc", nil, "invalid digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := OpenStore(filepath.Join(t.TempDir(), "store"))
			require.NoError(t, err)
			d, n, err := s.Put(strings.NewReader(content), tc.want)
			if tc.wantErr != nil || tc.errText != "" {
				require.Error(t, err)
				if tc.wantErr != nil {
					assert.ErrorIs(t, err, tc.wantErr)
				}
				assert.Contains(t, err.Error(), tc.errText)
				des, err := os.ReadDir(s.Dir())
				require.NoError(t, err)
				assert.Empty(t, des, "nothing stored, no temp file")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, sha(content), d)
			assert.Equal(t, int64(len(content)), n)
			assert.True(t, s.Has(d))
			got, err := os.ReadFile(s.Path(d))
			require.NoError(t, err)
			assert.Equal(t, content, string(got))
		})
	}
}

func TestStoreConcurrentPut(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	require.NoError(t, err)
	content := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	want := sha(string(content))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, _, err := s.Put(bytes.NewReader(content), want)
			if err == nil && d != want {
				err = assert.AnError
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}
	require.NoError(t, s.Verify(want))
	des, err := os.ReadDir(s.Dir())
	require.NoError(t, err)
	assert.Len(t, des, 1, "one blob, no temp files")
}

func TestStoreOps(t *testing.T) {
	s, err := OpenStore(filepath.Join(t.TempDir(), "a", "b"))
	require.NoError(t, err)
	absent := sha("absent")

	assert.False(t, s.Has(absent))
	_, _, err = s.Open(absent)
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, s.Verify(absent), ErrNotFound)
	assert.NoError(t, s.Remove(absent))
	assert.Empty(t, s.Path("../x"))
	_, _, err = s.Open("../../etc/passwd")
	assert.Error(t, err)

	// PutFile copies; the caller keeps its file.
	src := filepath.Join(t.TempDir(), "src")
	require.NoError(t, os.WriteFile(src, []byte("one"), 0o600))
	d1, n, err := s.PutFile(src, sha("one"))
	require.NoError(t, err)
	assert.Equal(t, int64(3), n)
	assert.FileExists(t, src)
	_, _, err = s.PutFile(src, sha("two"))
	assert.ErrorIs(t, err, ErrDigestMismatch)

	past := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(s.Path(d1), past, past))
	d2, _, err := s.Put(strings.NewReader("two"), "")
	require.NoError(t, err)
	// Putting an existing blob again replaces it (and refreshes its ModTime).
	_, _, err = s.Put(strings.NewReader("two"), d2)
	require.NoError(t, err)

	f, size, err := s.Open(d2)
	require.NoError(t, err)
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	assert.Equal(t, "two", string(b))
	assert.Equal(t, int64(3), size)

	// Not-a-digest names and temp files are ignored by List; OpenStore removes stale temps.
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "junk"), nil, 0o644))
	fresh, stale := filepath.Join(s.Dir(), tempPrefix+"fresh"), filepath.Join(s.Dir(), tempPrefix+"stale")
	require.NoError(t, os.WriteFile(fresh, nil, 0o644))
	require.NoError(t, os.WriteFile(stale, nil, 0o644))
	old := time.Now().Add(-2 * staleTempAge)
	require.NoError(t, os.Chtimes(stale, old, old))
	s, err = OpenStore(s.Dir())
	require.NoError(t, err)
	assert.FileExists(t, fresh)
	assert.NoFileExists(t, stale)
	blobs, err := s.List()
	require.NoError(t, err)
	require.Len(t, blobs, 2)
	assert.Equal(t, d1, blobs[0].Digest, "oldest first")
	assert.Equal(t, d2, blobs[1].Digest)
	assert.Equal(t, int64(3), blobs[0].Size)

	// A flipped byte is found by Verify.
	require.NoError(t, s.Verify(d1))
	p := s.Path(d1)
	require.NoError(t, os.Chmod(p, 0o644))
	require.NoError(t, os.WriteFile(p, []byte("onf"), 0o644))
	err = s.Verify(d1)
	assert.ErrorIs(t, err, ErrDigestMismatch)
	assert.Contains(t, err.Error(), sha("onf"))

	require.NoError(t, s.Remove(d1))
	assert.False(t, s.Has(d1))
	require.NoError(t, s.Remove(d1))
	blobs, err = s.List()
	require.NoError(t, err)
	assert.Len(t, blobs, 1)

	d, n, err := FileSHA256(src)
	require.NoError(t, err)
	assert.Equal(t, sha("one"), d)
	assert.Equal(t, int64(3), n)
}
