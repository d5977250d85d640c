package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Scheme is the authorization scheme and the first line of the signed string.
// DFLOW2 added the target node's identity (HeaderNode) to DFLOW1's.
const Scheme = "DFLOW2"

// HeaderContentSHA256 carries the hex sha256 of the request body.
const HeaderContentSHA256 = "X-Dflow-Content-Sha256"

// HeaderNode carries the ID of the node (agent incarnation) the request is
// for; the signature covers it.
const HeaderNode = "X-Dflow-Node"

// maxNodeIDLen bounds a node ID.
const maxNodeIDLen = 256

// ValidNodeID tells whether id can name a node in a signed request: 1 to
// 256 visible ASCII characters (no spaces, no controls).
func ValidNodeID(id string) bool {
	if id == "" || len(id) > maxNodeIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// EmptySHA256 is the hex sha256 of an empty body.
const EmptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// maxAuthorizationLen bounds the Authorization header we parse: an rsa-16384
// signature is about 2.8 KB of base64.
const maxAuthorizationLen = 8 << 10

// Sign adds the authentication headers to req, signed by s for the node
// with ID node, at time now. bodySHA256 is the hex sha256 of the body (use
// EmptySHA256 for none). The host signed is req.Host, or req.URL.Host when
// that is empty; the request URI is req.URL.RequestURI(), which is what
// net/http sends.
func Sign(req *http.Request, s ssh.Signer, node, bodySHA256 string, now time.Time) error {
	if s == nil {
		return errors.New("sign request: no signer")
	}
	if !ValidNodeID(node) {
		return fmt.Errorf("sign request: node id %q: want 1 to %d visible ASCII characters", truncate(node, 80), maxNodeIDLen)
	}
	bodySHA256 = strings.ToLower(bodySHA256)
	if !isHex(bodySHA256, sha256.Size*2) {
		return fmt.Errorf("sign request: body sha256 %q is not 64 hex digits", truncate(bodySHA256, 80))
	}
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return fmt.Errorf("sign request: nonce: %w", err)
	}
	nonce := hex.EncodeToString(n[:])
	ts := strconv.FormatInt(now.UnixNano(), 10)
	data := signedString(requestMethod(req), clientHost(req), node, req.URL.RequestURI(), ts, nonce, bodySHA256)
	sig, err := signData(s, data)
	if err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	req.Header.Set("Authorization", Scheme+" key="+ssh.FingerprintSHA256(s.PublicKey())+
		",ts="+ts+",nonce="+nonce+",sig="+base64.StdEncoding.EncodeToString(ssh.Marshal(sig)))
	req.Header.Set(HeaderContentSHA256, bodySHA256)
	req.Header.Set(HeaderNode, node)
	return nil
}

// signData signs data with s; rsa keys sign with rsa-sha2-512 (or -256 if
// the signer is restricted to it), never with SHA-1.
func signData(s ssh.Signer, data []byte) (*ssh.Signature, error) {
	if s.PublicKey().Type() != ssh.KeyAlgoRSA {
		return s.Sign(rand.Reader, data)
	}
	as, ok := s.(ssh.AlgorithmSigner)
	if !ok {
		return nil, errors.New("rsa signer cannot choose its algorithm: it would sign with SHA-1 (ssh-rsa)")
	}
	algo := ssh.KeyAlgoRSASHA512
	if ms, ok := s.(ssh.MultiAlgorithmSigner); ok {
		algos := ms.Algorithms()
		switch {
		case slices.Contains(algos, ssh.KeyAlgoRSASHA512):
		case slices.Contains(algos, ssh.KeyAlgoRSASHA256):
			algo = ssh.KeyAlgoRSASHA256
		default:
			return nil, fmt.Errorf("rsa signer allows only %v: need %s or %s", algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		}
	}
	return as.SignWithAlgorithm(rand.Reader, data, algo)
}

// signedString is what the signature covers.
func signedString(method, host, node, uri, ts, nonce, bodySHA256 string) []byte {
	var b bytes.Buffer
	for _, part := range []string{Scheme, method, host, node, uri, ts, nonce} {
		b.WriteString(part)
		b.WriteByte('\n')
	}
	b.WriteString(bodySHA256)
	return b.Bytes()
}

func requestMethod(req *http.Request) string {
	if req.Method == "" {
		return http.MethodGet
	}
	return req.Method
}

// clientHost is the host net/http puts in the Host header, lowercased: the
// IPv6 zone is not sent.
func clientHost(req *http.Request) string {
	h := req.Host
	if h == "" && req.URL != nil {
		h = req.URL.Host
	}
	if strings.HasPrefix(h, "[") {
		if i, j := strings.Index(h, "%"), strings.Index(h, "]"); i > 0 && j > i {
			h = h[:i] + h[j:]
		}
	}
	return strings.ToLower(h)
}

// serverHost is the Host the request arrived for, lowercased.
func serverHost(req *http.Request) string {
	return clientHost(req)
}

// serverURI is the request URI as sent on the wire. A request in absolute
// form (through a proxy) is reduced to its path and query, which is what the
// handler acts on.
func serverURI(req *http.Request) string {
	if strings.HasPrefix(req.RequestURI, "/") {
		return req.RequestURI
	}
	return req.URL.RequestURI()
}

// authorization is a parsed Authorization header.
type authorization struct {
	key   string // fingerprint
	ts    string // as sent (canonical)
	tsN   int64
	nonce string
	n     [16]byte
	sig   *ssh.Signature
}

// parseAuthorization parses a DFLOW2 Authorization header value. Its errors
// never quote the value.
func parseAuthorization(v string) (*authorization, error) {
	if len(v) > maxAuthorizationLen {
		return nil, fmt.Errorf("authorization header is %d bytes, more than %d", len(v), maxAuthorizationLen)
	}
	rest, ok := strings.CutPrefix(v, Scheme+" ")
	if !ok {
		if strings.HasPrefix(v, "DFLOW1 ") {
			return nil, fmt.Errorf("authorization scheme DFLOW1 is no longer accepted: this agent wants %s, which binds a request to one node; upgrade the client (dflow) to the agent's version", Scheme)
		}
		return nil, fmt.Errorf("authorization header is not of scheme %s", Scheme)
	}
	fields := strings.Split(rest, ",")
	names := []string{"key", "ts", "nonce", "sig"}
	if len(fields) != len(names) {
		return nil, fmt.Errorf("authorization header has %d fields, want %d (%s)", len(fields), len(names), strings.Join(names, ","))
	}
	vals := make([]string, len(names))
	for i, f := range fields {
		name, val, ok := strings.Cut(f, "=")
		if !ok || name != names[i] || val == "" {
			return nil, fmt.Errorf("authorization header field %d is not %s=<value>", i+1, names[i])
		}
		vals[i] = val
	}
	a := &authorization{key: vals[0], ts: vals[1], nonce: vals[2]}
	if !isFingerprint(a.key) {
		return nil, errors.New("authorization header key is not a SHA256 fingerprint")
	}
	tsN, err := strconv.ParseInt(a.ts, 10, 64)
	if err != nil || strconv.FormatInt(tsN, 10) != a.ts {
		return nil, errors.New("authorization header ts is not a decimal unix time in nanoseconds")
	}
	a.tsN = tsN
	if !isHex(a.nonce, 32) {
		return nil, errors.New("authorization header nonce is not 32 lowercase hex digits")
	}
	_, _ = hex.Decode(a.n[:], []byte(a.nonce))
	blob, err := base64.StdEncoding.Strict().DecodeString(vals[3])
	if err != nil {
		return nil, errors.New("authorization header sig is not standard base64")
	}
	a.sig = new(ssh.Signature)
	if err := ssh.Unmarshal(blob, a.sig); err != nil {
		return nil, errors.New("authorization header sig is not an ssh signature")
	}
	return a, nil
}

// isHex reports whether s is n lowercase hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isFingerprint reports whether s has the shape of ssh.FingerprintSHA256.
func isFingerprint(s string) bool {
	b64, ok := strings.CutPrefix(s, "SHA256:")
	if !ok || len(b64) != 43 {
		return false
	}
	_, err := base64.RawStdEncoding.Strict().DecodeString(b64)
	return err == nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Transport is an http.RoundTripper that signs every request with Signer,
// for the node Node (the agent's --node-id): another node refuses it. If
// the request already has the header HeaderContentSHA256 set, that value
// is signed and the body is not read (for large streamed uploads whose hash
// the caller knows); otherwise the body is read (via GetBody when possible,
// or buffered in memory) and hashed. The caller's request is not modified.
//
// A request that net/http's Transport retries on a broken keep-alive
// connection is resent with the same signature; if the agent had received
// the first copy, the retry is refused as replayed. Requests that follow a
// redirect are signed afresh.
type Transport struct {
	Signer ssh.Signer
	Node   string            // the ID of the node every request is for
	Base   http.RoundTripper // default http.DefaultTransport
	Now    func() time.Time  // default time.Now
}

// RoundTrip signs req and sends it through Base.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody := func() {
		if req.Body != nil {
			_ = req.Body.Close()
		}
	}
	if t.Signer == nil {
		closeBody()
		return nil, errors.New("auth transport: no signer")
	}
	if !ValidNodeID(t.Node) {
		closeBody()
		return nil, fmt.Errorf("auth transport: %s %s: node id %q: want the ID of the node the request is for (1 to %d visible ASCII characters)", req.Method, req.URL.Redacted(), truncate(t.Node, 80), maxNodeIDLen)
	}
	out := req.Clone(req.Context())
	sum := out.Header.Get(HeaderContentSHA256)
	switch {
	case sum != "":
	case req.Body == nil || req.Body == http.NoBody:
		sum = EmptySHA256
	case req.GetBody != nil:
		b, err := req.GetBody()
		if err != nil {
			closeBody()
			return nil, fmt.Errorf("auth transport: %s %s: get body: %w", req.Method, req.URL.Redacted(), err)
		}
		h := sha256.New()
		_, err = io.Copy(h, b)
		_ = b.Close()
		if err != nil {
			closeBody()
			return nil, fmt.Errorf("auth transport: %s %s: hash body: %w", req.Method, req.URL.Redacted(), err)
		}
		sum = hex.EncodeToString(h.Sum(nil))
	default:
		buf, err := io.ReadAll(req.Body)
		closeBody()
		if err != nil {
			return nil, fmt.Errorf("auth transport: %s %s: read body: %w", req.Method, req.URL.Redacted(), err)
		}
		h := sha256.Sum256(buf)
		sum = hex.EncodeToString(h[:])
		out.Body = io.NopCloser(bytes.NewReader(buf))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
		out.ContentLength = int64(len(buf))
		if len(buf) == 0 {
			out.Body, out.GetBody = http.NoBody, nil
		}
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	if err := Sign(out, t.Signer, t.Node, sum, now()); err != nil {
		if out.Body != req.Body && out.Body != nil {
			_ = out.Body.Close()
		}
		closeBody()
		return nil, fmt.Errorf("auth transport: %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(out)
}
