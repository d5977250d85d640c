package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/distributive-flow/dflow/artifact"
)

func TestReader(t *testing.T) {
	data := []byte("the bundle's bytes")
	h := sha256.Sum256(data)
	d := hex.EncodeToString(h[:])
	other := strings.Repeat("0", 64)
	for _, c := range []struct {
		name   string
		r      io.Reader
		digest string
		size   int64
		want   error  // errors.Is; nil: reads all
		says   string // a part of the error
	}{
		{"good", bytes.NewReader(data), d, int64(len(data)), nil, ""},
		{"good, unknown size", bytes.NewReader(data), d, -1, nil, ""},
		{"good, one byte at a time", iotest.OneByteReader(bytes.NewReader(data)), d, -1, nil, ""},
		{"good, data with EOF", iotest.DataErrReader(bytes.NewReader(data)), d, int64(len(data)), nil, ""},
		{"other digest", bytes.NewReader(data), other, -1, artifact.ErrDigestMismatch, "got sha256:" + d},
		{"shorter", bytes.NewReader(data), d, int64(len(data)) + 1, nil, "declared"},
		{"longer", bytes.NewReader(data), d, int64(len(data)) - 1, nil, "more than"},
		{"reader fails", iotest.ErrReader(io.ErrUnexpectedEOF), d, -1, io.ErrUnexpectedEOF, ""},
	} {
		got, err := io.ReadAll(Reader(c.r, c.digest, c.size))
		switch {
		case c.want == nil && c.says == "":
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s: %q, %v", c.name, got, err)
			}
		case err == nil:
			t.Errorf("%s: no error", c.name)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: %v; want %v", c.name, err, c.want)
		case !strings.Contains(err.Error(), c.says):
			t.Errorf("%s: %v; want it to say %q", c.name, err, c.says)
		}
	}
}

func TestDigest(t *testing.T) {
	if err := Digest(strings.Repeat("a", 64)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"", "sha256:" + strings.Repeat("a", 64), strings.Repeat("A", 64), "../x"} {
		if err := Digest(d); !errors.Is(err, ErrInvalidDigest) || !strings.Contains(err.Error(), d) {
			t.Errorf("Digest(%q) = %v", d, err)
		}
	}
}
