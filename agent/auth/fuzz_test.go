package auth_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
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

// fuzzRequest is one request as the fuzzer may mutate it: every part the
// signature is meant to cover, and how the body travels.
type fuzzRequest struct {
	method, host, uri, node, authz, sum string
	body                                []byte
}

// wire is the request as an HTTP/1.1 client sends it; chunked sends the
// body with Transfer-Encoding: chunked instead of a Content-Length.
func (r fuzzRequest) wire(chunked bool) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n%s: %s\r\n%s: %s\r\n",
		r.method, r.uri, r.host, r.authz, auth.HeaderContentSHA256, r.sum, auth.HeaderNode, r.node)
	if !chunked {
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(r.body))
		b.Write(r.body)
		return b.Bytes()
	}
	b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	for rest := r.body; len(rest) > 0; {
		n := min(len(rest), 50)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, rest[:n])
		rest = rest[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.Bytes()
}

// FuzzVerify mutates validly signed requests (method, host, request URI,
// node header, Authorization — and so ts, nonce, key and sig —, content
// hash header, body) and sends each as wire bytes through Verify and
// through Middleware, with the body of known length or chunked, buffered or
// streamed (MaxBody is 64 bytes, and Stream allows the request or not). A
// request is accepted — by Verify, or by Middleware with its handler reading
// the whole body without an error — only when what the agent parsed equals
// what was signed (see equal), and the unmutated request goes through. Each input gets a fresh verifier (nonces unused);
// the clock is fixed.
func FuzzVerify(f *testing.F) {
	const node = "node-a-1f2e"
	// Every fuzz worker process runs this setup and must arrive at the same
	// seeds: keys, nonces and the clock are fixed.
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
	keys := []ssh.PublicKey{alice.PublicKey(), carol.PublicKey(), rsaKey.PublicKey()}

	seq := 0
	sign := func(s ssh.Signer, at time.Time, method, host, nodeID, uri string, body []byte) fuzzRequest {
		seq++
		nonce := sha([]byte(fmt.Sprint("fuzz seed ", seq)))[:32]
		ts := strconv.FormatInt(at.UnixNano(), 10)
		data := "DFLOW2\n" + method + "\n" + strings.ToLower(host) + "\n" + nodeID + "\n" + uri + "\n" + ts + "\n" + nonce + "\n" + sha(body)
		var sig *ssh.Signature
		if as, ok := s.(ssh.AlgorithmSigner); ok && s.PublicKey().Type() == ssh.KeyAlgoRSA {
			sig, err = as.SignWithAlgorithm(rand.Reader, []byte(data), ssh.KeyAlgoRSASHA256)
		} else {
			sig, err = s.Sign(rand.Reader, []byte(data))
		}
		if err != nil {
			f.Fatal(err)
		}
		return fuzzRequest{
			method: method, host: host, uri: uri, node: nodeID, sum: sha(body), body: body,
			authz: "DFLOW2 key=" + ssh.FingerprintSHA256(s.PublicKey()) + ",ts=" + ts + ",nonce=" + nonce +
				",sig=" + base64.StdEncoding.EncodeToString(ssh.Marshal(sig)),
		}
	}
	// The requests the fuzzer starts from, and which it may find again:
	// each is accepted when sent unmutated.
	var signed []fuzzRequest
	bodies := [][]byte{nil, []byte(`{"id":"a","version":"abc"}`), bytes.Repeat([]byte("x"), 200)}
	for i, body := range bodies {
		for _, s := range []ssh.Signer{alice, carol, rsaKey} {
			signed = append(signed, sign(s, now, "POST", "node-a:7000", node, "/v1/processes?x="+strconv.Itoa(i), body))
		}
	}
	signed = append(signed, sign(alice, now, "PUT", "Node-A:7000", node, "/v1/artifacts/"+sha(bodies[2]), bodies[2]))
	add := func(r fuzzRequest, flags uint8) {
		f.Add(r.method, r.host, r.uri, r.node, r.authz, r.sum, r.body, flags)
	}
	for _, r := range signed {
		for flags := range uint8(4) {
			add(r, flags)
		}
		// Near misses, one part at a time.
		m := r
		m.method = "PUT"
		add(m, 1)
		m = r
		m.host = "node-b:7000"
		add(m, 0)
		m = r
		m.uri += "&force=1"
		add(m, 0)
		m = r
		m.node = "node-b-1f2e"
		add(m, 0)
		m = r
		m.authz = strings.Replace(r.authz, "ts=1", "ts=2", 1)
		add(m, 0)
		m = r
		m.authz = strings.Replace(r.authz, "nonce=", "nonce=0", 1)
		add(m, 0)
		m = r
		m.body = append(append([]byte{}, r.body...), '!')
		add(m, 3)
		m = r
		m.body = append([]byte(`{"id":"evil"}`), r.body...)
		add(m, 2)
		m = r
		m.sum = sha([]byte("other"))
		add(m, 1)
	}
	for _, at := range []time.Time{now.Add(-time.Hour), now.Add(time.Hour), now.Add(-45 * time.Second)} {
		add(sign(alice, at, "POST", "node-a:7000", node, "/v1/switch", bodies[1]), 0)
	}
	add(sign(alice, now, "POST", "node-a:7000", "node-b-1f2e", "/v1/switch", bodies[1]), 0)
	add(sign(mallory, now, "POST", "node-a:7000", node, "/v1/switch", bodies[1]), 0)
	add(fuzzRequest{method: "GET", host: "node-a:7000", uri: "/", node: node, authz: "DFLOW1 key=,ts=,nonce=,sig=", sum: auth.EmptySHA256}, 0)

	newVerifier := func(stream bool) *auth.Verifier {
		return auth.NewVerifier(keys, auth.VerifierOptions{
			Node:      node,
			Now:       func() time.Time { return now },
			NotBefore: now.Add(-30 * time.Second),
			MaxBody:   64, // the 200-byte body streams or is refused
			Stream:    func(*http.Request) bool { return stream },
		})
	}

	f.Fuzz(func(t *testing.T, method, host, uri, nodeID, authz, sum string, body []byte, flags uint8) {
		chunked, stream := flags&1 != 0, flags&2 != 0
		in := fuzzRequest{method: method, host: host, uri: uri, node: nodeID, authz: authz, sum: sum, body: body}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(in.wire(chunked))))
		if err != nil {
			return // a server answers 400 before any handler
		}
		// What the agent parsed: the request is the signed one exactly when
		// all of it matches one of the signed requests.
		got := parsed(req)
		wire, err := io.ReadAll(req.Body)
		if err != nil {
			return // malformed chunking: a server answers 400
		}
		got.body = wire
		same, exact := false, false
		for _, s := range signed {
			same = same || got.equal(s)
			exact = exact || got.equal(s) && got.authz == s.authz
		}

		// Verify, directly.
		req, _ = http.ReadRequest(bufio.NewReader(bytes.NewReader(in.wire(chunked))))
		err = newVerifier(stream).Verify(req, sha(wire))
		if err == nil && !same {
			t.Fatalf("Verify accepted a request that was not signed: %+v (chunked %v)", got, chunked)
		}
		if err != nil && exact {
			t.Fatalf("Verify refused the signed request %+v: %v", got, err)
		}
		if err != nil {
			requireSentinel(t, firstSentinel(err), err)
		}

		// Middleware, with a handler that reads the whole body.
		req, _ = http.ReadRequest(bufio.NewReader(bytes.NewReader(in.wire(chunked))))
		req.RemoteAddr = "192.0.2.1:1234"
		called, accepted := false, false
		var seen []byte
		mw := newVerifier(stream).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			called = true
			var rerr error
			seen, rerr = io.ReadAll(r.Body)
			accepted = rerr == nil
		}), func(string, ...any) {})
		w := httptest.NewRecorder()
		mw.ServeHTTP(w, req)
		if accepted && !same {
			t.Fatalf("Middleware accepted a request that was not signed (stream %v, chunked %v): %+v", stream, chunked, got)
		}
		if accepted && !bytes.Equal(seen, wire) {
			t.Fatalf("Middleware's handler read %q, not the signed body %q", seen, wire)
		}
		if called && !stream && !same {
			t.Fatalf("Middleware called the handler of a refused request that may not stream: %+v", got)
		}
		if exact && !accepted {
			// The signed request is refused only for its size.
			if stream || len(wire) <= 64 || w.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("Middleware refused the signed request (status %d, stream %v, chunked %v): %s", w.Code, stream, chunked, w.Body)
			}
		}
		if !called && w.Code/100 == 2 {
			t.Fatalf("Middleware answered %d without calling the handler", w.Code)
		}
	})
}

// parsed is what a server parsed of req's signed parts; a header that is
// missing or repeated is "" (refused anyway).
func parsed(req *http.Request) fuzzRequest {
	one := func(name string) string {
		if v := req.Header.Values(name); len(v) == 1 {
			return v[0]
		}
		return ""
	}
	// A request in absolute form (through a proxy) is acted on, and signed,
	// as its path and query.
	uri := req.RequestURI
	if !strings.HasPrefix(uri, "/") {
		uri = req.URL.RequestURI()
	}
	return fuzzRequest{
		method: req.Method, host: req.Host, uri: uri,
		node: one(auth.HeaderNode), authz: one("Authorization"), sum: one(auth.HeaderContentSHA256),
	}
}

// equal compares what the signature covers: the host lowercased (as it is
// signed), the rest byte for byte, and the Authorization header but for its
// sig. Another valid signature of the same bytes may be accepted: ECDSA
// signatures are randomized (so a fuzz worker's seeds carry other
// signatures than this process made) and malleable, and neither lets a
// request through that was not signed as it is; its nonce still counts once.
func (r fuzzRequest) equal(s fuzzRequest) bool {
	unsigned := func(authz string) string {
		if i := strings.LastIndex(authz, ",sig="); i >= 0 {
			return authz[:i]
		}
		return authz
	}
	return r.method == s.method && strings.ToLower(r.host) == strings.ToLower(s.host) && r.uri == s.uri && r.node == s.node &&
		unsigned(r.authz) == unsigned(s.authz) && r.sum == s.sum && bytes.Equal(r.body, s.body)
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
