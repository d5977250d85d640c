package auth_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent/auth"
	"golang.org/x/crypto/ssh"
)

// FuzzVerify feeds arbitrary Authorization and content hash headers and
// bodies to Verify and to Middleware: neither may panic, and neither may
// accept. The seeds include requests that were validly signed, whose nonces
// are used up before fuzzing starts, so that the fuzzer explores the paths
// past the signature check.
func FuzzVerify(f *testing.F) {
	const (
		host   = "node-a:7000"
		target = "/v1/start?version=abc"
	)
	// Every fuzz worker process runs this setup and must arrive at the same
	// seeds and the same used-up nonces: keys and nonces are fixed, and so is
	// the clock.
	now := time.Unix(1_700_000_000, 0)
	alice := mustSigner(f, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)))
	mallory := mustSigner(f, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize)))
	ecKey, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{5}, 32))
	if err != nil {
		f.Fatal(err)
	}
	carol := mustSigner(f, ecKey)
	// A test-only key, fixed so that every worker has the same one.
	pemBytes, err := os.ReadFile(filepath.Join("testdata", "fuzz_rsa_key.pem"))
	if err != nil {
		f.Fatal(err)
	}
	rsaKey, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		f.Fatal(err)
	}
	v := auth.NewVerifier([]ssh.PublicKey{alice.PublicKey(), carol.PublicKey(), rsaKey.PublicKey()}, auth.VerifierOptions{
		Now:       func() time.Time { return now },
		NotBefore: now.Add(-30 * time.Second),
		MaxBody:   64, // exercise the streamed path too
	})

	seq := 0
	sign := func(s ssh.Signer, at time.Time, body []byte) (string, string) {
		seq++
		nonce := sha([]byte(fmt.Sprint("fuzz seed ", seq)))[:32]
		ts := strconv.FormatInt(at.UnixNano(), 10)
		data := "DFLOW1\nPOST\n" + host + "\n" + target + "\n" + ts + "\n" + nonce + "\n" + sha(body)
		var sig *ssh.Signature
		if as, ok := s.(ssh.AlgorithmSigner); ok && s.PublicKey().Type() == ssh.KeyAlgoRSA {
			sig, err = as.SignWithAlgorithm(rand.Reader, []byte(data), ssh.KeyAlgoRSASHA256)
		} else {
			sig, err = s.Sign(rand.Reader, []byte(data))
		}
		if err != nil {
			f.Fatal(err)
		}
		return "DFLOW1 key=" + ssh.FingerprintSHA256(s.PublicKey()) + ",ts=" + ts + ",nonce=" + nonce +
			",sig=" + base64.StdEncoding.EncodeToString(ssh.Marshal(sig)), sha(body)
	}
	bodies := [][]byte{nil, []byte(`{"version":"abc"}`), bytes.Repeat([]byte("x"), 200)}
	for _, body := range bodies {
		for _, s := range []ssh.Signer{alice, carol, rsaKey} {
			authz, sum := sign(s, now, body)
			// Use the nonce up: from now on this exact request is a replay.
			req, _ := http.NewRequest("POST", "http://"+host+target, bytes.NewReader(body))
			req.Header.Set("Authorization", authz)
			req.Header.Set(auth.HeaderContentSHA256, sum)
			if err := v.Verify(req, sha(body)); err != nil {
				f.Fatalf("seed request refused: %v", err)
			}
			f.Add(authz, sum, body)
			// Near misses.
			f.Add(authz, sum, append(append([]byte{}, body...), '!'))
			f.Add(authz, sha([]byte("other")), body)
			f.Add(strings.Replace(authz, "nonce=", "nonce=0", 1), sum, body)
			f.Add(authz[:len(authz)-8], sum, body)
			f.Add(strings.ToLower(authz), sum, body)
			f.Add(authz+",extra=1", sum, body)
			f.Add(authz, strings.ToUpper(sum), body)
		}
		for _, at := range []time.Time{now.Add(-time.Hour), now.Add(time.Hour), now.Add(-45 * time.Second)} {
			authz, sum := sign(alice, at, body)
			f.Add(authz, sum, body)
		}
		authz, sum := sign(mallory, now, body)
		f.Add(authz, sum, body)
	}
	f.Add("", "", []byte{})
	f.Add("DFLOW1 ", auth.EmptySHA256, []byte{})
	f.Add("DFLOW1 key=,ts=,nonce=,sig=", auth.EmptySHA256, []byte{})
	f.Add("DFLOW1 key=SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,ts=-9223372036854775808,nonce=00000000000000000000000000000000,sig=AAAA", auth.EmptySHA256, []byte{})

	called := false
	mw := v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }), func(string, ...any) {})

	f.Fuzz(func(t *testing.T, authz, sum string, body []byte) {
		req, err := http.NewRequest("POST", "http://"+host+target, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header["Authorization"] = []string{authz}
		req.Header[auth.HeaderContentSHA256] = []string{sum}
		err = v.Verify(req, sha(body))
		if err == nil {
			t.Fatalf("Verify accepted Authorization %q, content hash %q, body %q", authz, sum, body)
		}
		requireSentinel(t, firstSentinel(err), err)

		sreq := httptest.NewRequest("POST", target, bytes.NewReader(body))
		sreq.Host = host
		sreq.Header["Authorization"] = []string{authz}
		sreq.Header[auth.HeaderContentSHA256] = []string{sum}
		w := httptest.NewRecorder()
		called = false
		mw.ServeHTTP(w, sreq)
		if called || w.Code != http.StatusUnauthorized {
			t.Fatalf("Middleware accepted (status %d, handler called %v) Authorization %q, content hash %q, body %q", w.Code, called, authz, sum, body)
		}
	})
}

func mustSigner(f *testing.F, key any) ssh.Signer {
	s, err := ssh.NewSignerFromKey(key)
	if err != nil {
		f.Fatal(err)
	}
	return s
}

func firstSentinel(err error) error {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return s
		}
	}
	return nil
}
