package auth

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// The errors Verify wraps; every refusal wraps exactly one of them.
var (
	// ErrUnsigned: the Authorization or content hash header is missing,
	// repeated, or not well formed.
	ErrUnsigned = errors.New("unsigned request")
	// ErrUnknownKey: the signing key is not among the authorized keys.
	ErrUnknownKey = errors.New("unknown key")
	// ErrBadSignature: the signature does not verify for this request, or
	// the body does not match the signed content hash.
	ErrBadSignature = errors.New("bad signature")
	// ErrExpired: ts is outside the window, before NotBefore, or older than
	// the replay cache can still vouch for.
	ErrExpired = errors.New("expired request")
	// ErrReplayed: the nonce was accepted before, within the window.
	ErrReplayed = errors.New("replayed request")
	// ErrWrongNode: the request is validly signed, but for another node (or
	// another incarnation of this one).
	ErrWrongNode = errors.New("request for another node")
)

// ErrBodyTooLarge is Middleware's refusal (413) of a body larger than
// MaxBody on a request that may not stream; Verify never returns it.
var ErrBodyTooLarge = errors.New("request body too large")

// Defaults for VerifierOptions.
const (
	DefaultWindow    = 60 * time.Second
	DefaultMaxBody   = 1 << 20
	DefaultMaxNonces = 100_000
)

// VerifierOptions configure a Verifier. Zero values take the defaults.
type VerifierOptions struct {
	// Window is how far a request's ts may be from now, either way;
	// default 60s.
	Window time.Duration
	// NotBefore refuses, as ErrExpired, requests whose ts is before it; zero
	// means no bound. An agent sets it to the time it started: the replay
	// cache of a new process is empty, and this keeps requests signed for
	// the previous process from being replayed to it. Whatever slack is
	// subtracted from the start time (for clients whose clocks lag) is a
	// window in which a request accepted by the previous process could be
	// replayed to this one.
	NotBefore time.Time
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Node is the ID of the node this verifier guards (the agent's
	// --node-id). A request signed for any other node is refused as
	// ErrWrongNode; with Node "" every request is.
	Node string
	// MaxBody: Middleware reads bodies up to this size whole and checks
	// them before the handler runs; a larger body is refused with 413
	// (ErrBodyTooLarge) unless Stream allows the request to stream.
	// Default 1 MiB.
	MaxBody int64
	// Stream tells which requests may carry a body larger than MaxBody
	// (nil: none). Middleware hands such a body to the handler as a stream
	// that is checked at its end: see Middleware for what that asks of the
	// handler. Only handlers that write the body aside and commit it after
	// io.EOF (an artifact upload) may stream.
	Stream func(*http.Request) bool
	// MaxNonces caps the replay cache; default 100,000. See the package
	// documentation for what happens when it is full.
	MaxNonces int
}

// Verifier checks signed requests against a set of authorized keys. It is
// safe for concurrent use.
type Verifier struct {
	o    VerifierOptions
	keys atomic.Pointer[map[string]ssh.PublicKey]

	mu    sync.Mutex
	seen  map[[16]byte]struct{}
	order nonceHeap // the entries of seen, oldest ts first
	// floor: requests with ts <= floor are refused; it rises as entries
	// leave the cache.
	floor int64
}

// NewVerifier returns a Verifier accepting requests signed by keys.
func NewVerifier(keys []ssh.PublicKey, o VerifierOptions) *Verifier {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxNonces <= 0 {
		o.MaxNonces = DefaultMaxNonces
	}
	v := &Verifier{o: o, seen: make(map[[16]byte]struct{}), floor: math.MinInt64}
	v.SetKeys(keys)
	return v
}

// SetKeys atomically replaces the authorized keys (agent reload). Requests
// being verified finish against the set they started with.
func (v *Verifier) SetKeys(keys []ssh.PublicKey) {
	m := make(map[string]ssh.PublicKey, len(keys))
	for _, k := range keys {
		if k != nil {
			m[ssh.FingerprintSHA256(k)] = k
		}
	}
	v.keys.Store(&m)
}

// Verify checks req's headers against bodySHA256 (hex) and returns nil or an
// error that wraps exactly one of ErrUnsigned, ErrUnknownKey,
// ErrBadSignature, ErrExpired, ErrWrongNode, ErrReplayed. A nil answer
// consumes the request's nonce: the same request verifies only once.
func (v *Verifier) Verify(req *http.Request, bodySHA256 string) error {
	a, _, claimed, err := v.checkHeaders(req)
	if err != nil {
		return err
	}
	if strings.ToLower(bodySHA256) != claimed {
		return fmt.Errorf("body sha256 does not match the signed %s: %w", HeaderContentSHA256, ErrBadSignature)
	}
	return v.remember(a)
}

// checkHeaders does every check but the body's and the nonce's. It returns
// the parsed header, the fingerprint of the verified key and the content hash
// the signature covers.
func (v *Verifier) checkHeaders(req *http.Request) (*authorization, string, string, error) {
	authz := req.Header.Values("Authorization")
	if len(authz) == 0 {
		return nil, "", "", fmt.Errorf("no Authorization header: %w", ErrUnsigned)
	}
	if len(authz) > 1 {
		return nil, "", "", fmt.Errorf("%d Authorization headers: %w", len(authz), ErrUnsigned)
	}
	sums := req.Header.Values(HeaderContentSHA256)
	if len(sums) != 1 || !isHex(sums[0], sha256.Size*2) {
		return nil, "", "", fmt.Errorf("want one %s header of 64 lowercase hex digits: %w", HeaderContentSHA256, ErrUnsigned)
	}
	claimed := sums[0]
	a, err := parseAuthorization(authz[0])
	if err != nil {
		return nil, "", "", fmt.Errorf("%v: %w", err, ErrUnsigned)
	}
	nodes := req.Header.Values(HeaderNode)
	if len(nodes) != 1 || !ValidNodeID(nodes[0]) {
		return nil, "", "", fmt.Errorf("%s request without one %s header naming the node it is for: %w", Scheme, HeaderNode, ErrUnsigned)
	}
	node := nodes[0]
	key, ok := (*v.keys.Load())[a.key]
	if !ok {
		return nil, "", "", fmt.Errorf("key %s is not authorized: %w", a.key, ErrUnknownKey)
	}
	now := v.o.Now()
	nowN, win := now.UnixNano(), int64(v.o.Window)
	switch {
	case a.tsN < subSat(nowN, win) || a.tsN > addSat(nowN, win):
		return nil, "", "", fmt.Errorf("signed at %s, more than %s from the agent's clock (%s): %w",
			time.Unix(0, a.tsN).UTC().Format(time.RFC3339Nano), v.o.Window, now.UTC().Format(time.RFC3339Nano), ErrExpired)
	case !v.o.NotBefore.IsZero() && a.tsN < v.o.NotBefore.UnixNano():
		return nil, "", "", fmt.Errorf("signed at %s, before the agent started (%s): %w",
			time.Unix(0, a.tsN).UTC().Format(time.RFC3339Nano), v.o.NotBefore.UTC().Format(time.RFC3339Nano), ErrExpired)
	}
	if len(a.sig.Rest) > 0 && !strings.HasPrefix(key.Type(), "sk-") {
		return nil, "", "", fmt.Errorf("signature by %s has trailing data: %w", a.key, ErrBadSignature)
	}
	if a.sig.Format == ssh.KeyAlgoRSA {
		return nil, "", "", fmt.Errorf("signature by %s uses SHA-1 (ssh-rsa); sign with rsa-sha2-256 or rsa-sha2-512: %w", a.key, ErrBadSignature)
	}
	method, host := requestMethod(req), serverHost(req)
	data := signedString(method, host, node, serverURI(req), a.ts, a.nonce, claimed)
	if err := key.Verify(data, a.sig); err != nil {
		return nil, "", "", fmt.Errorf("signature by %s does not match %q %q for host %q, node %q: %w", a.key, method, req.URL.Path, host, node, ErrBadSignature)
	}
	// Checked after the signature: only a key holder learns this node's ID.
	switch {
	case v.o.Node == "":
		return nil, "", "", fmt.Errorf("signed for node %q, and this verifier has no node id: %w", node, ErrWrongNode)
	case node != v.o.Node:
		return nil, "", "", fmt.Errorf("signed for node %q, this is node %q: %w", node, v.o.Node, ErrWrongNode)
	}
	return a, a.key, claimed, nil
}

// remember records a's nonce, or refuses it as replayed, or as expired when
// the cache can no longer vouch for its ts.
func (v *Verifier) remember(a *authorization) error {
	nowN, win := v.o.Now().UnixNano(), int64(v.o.Window)
	v.mu.Lock()
	defer v.mu.Unlock()
	// Forget what has left the window; such requests are refused as expired
	// anyway, and the floor keeps them refused if the clock steps back.
	for len(v.order) > 0 && v.order[0].ts < subSat(nowN, win) {
		v.forgetOldest()
	}
	if a.tsN <= v.floor {
		return fmt.Errorf("signed at %s, older than the replay cache remembers: %w", time.Unix(0, a.tsN).UTC().Format(time.RFC3339Nano), ErrExpired)
	}
	if _, ok := v.seen[a.n]; ok {
		return fmt.Errorf("nonce %s already used: %w", a.nonce, ErrReplayed)
	}
	if len(v.order) >= v.o.MaxNonces {
		if a.tsN <= v.order[0].ts {
			return fmt.Errorf("replay cache full (%d requests) and this one is older than all it holds: %w", v.o.MaxNonces, ErrExpired)
		}
		v.forgetOldest()
	}
	v.seen[a.n] = struct{}{}
	heap.Push(&v.order, nonceEntry{ts: a.tsN, nonce: a.n})
	return nil
}

func (v *Verifier) forgetOldest() {
	e := heap.Pop(&v.order).(nonceEntry)
	delete(v.seen, e.nonce)
	v.floor = max(v.floor, e.ts)
}

type nonceEntry struct {
	ts    int64
	nonce [16]byte
}

type nonceHeap []nonceEntry

func (h nonceHeap) Len() int           { return len(h) }
func (h nonceHeap) Less(i, j int) bool { return h[i].ts < h[j].ts }
func (h nonceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nonceHeap) Push(x any)        { *h = append(*h, x.(nonceEntry)) }
func (h *nonceHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func addSat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func subSat(a, b int64) int64 {
	if b > 0 && a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}

type fingerprintKey struct{}

// KeyFingerprint returns the SHA256 fingerprint of the key that signed the
// request whose context this is, or "" if Middleware did not verify it.
func KeyFingerprint(ctx context.Context) string {
	s, _ := ctx.Value(fingerprintKey{}).(string)
	return s
}

// Middleware authenticates every request before next. On failure it answers
// with a JSON body {"error": "..."} and logs one line via logf (method, path,
// remote address, reason); it never logs headers or signatures. logf nil
// means log.Printf. The statuses: 401 for a request that is not validly
// signed for this node now (every sentinel error of Verify), 413 for a body
// larger than MaxBody on a request that may not stream (ErrBodyTooLarge;
// by its Content-Length, before anything is read, when it has one), 400 for
// a body that could not be read (cut short).
//
// The headers are checked before any body is read. On success next sees
// exactly the signed body, and the verified key's fingerprint is in the
// request's context (KeyFingerprint). A body of at most MaxBody bytes is
// read whole and checked before next runs (and r.ContentLength is its
// length). A larger body is accepted only for a request Stream allows, and
// is passed on as a reader that returns an error wrapping ErrBadSignature
// at the end if the hash does not match: such a handler must read to EOF,
// must treat any read error as fatal, and must not commit anything (rename
// a file into place, apply a change) before it has seen io.EOF.
func (v *Verifier) Middleware(next http.Handler, logf func(format string, args ...any)) http.Handler {
	if logf == nil {
		logf = log.Printf
	}
	refuse := func(w http.ResponseWriter, r *http.Request, code int, err error) {
		logf("auth: refused %q %q from %s: %v", r.Method, r.URL.Path, r.RemoteAddr, err)
		w.Header().Set("Content-Type", "application/json")
		switch code {
		case http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", Scheme)
		case http.StatusRequestEntityTooLarge, http.StatusBadRequest:
			// The rest of the body is not read: the connection cannot be
			// reused.
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
	}
	tooLarge := func(r *http.Request, what string) error {
		return fmt.Errorf("%s %s: body %s, more than the %d bytes this request may carry: %w", r.Method, r.URL.Path, what, v.o.MaxBody, ErrBodyTooLarge)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, fp, claimed, err := v.checkHeaders(r)
		if err != nil {
			refuse(w, r, http.StatusUnauthorized, err)
			return
		}
		streams := v.o.Stream != nil && v.o.Stream(r)
		body := r.Body
		if body == nil {
			body = http.NoBody
		}
		if !streams && r.ContentLength > v.o.MaxBody {
			refuse(w, r, http.StatusRequestEntityTooLarge, tooLarge(r, fmt.Sprintf("of %d bytes", r.ContentLength)))
			return
		}
		var prefix []byte
		if body != http.NoBody && r.ContentLength <= v.o.MaxBody {
			prefix, err = io.ReadAll(io.LimitReader(body, v.o.MaxBody+1))
			if err != nil {
				refuse(w, r, http.StatusBadRequest, fmt.Errorf("read body: %w", err))
				return
			}
		}
		whole := body == http.NoBody || r.ContentLength <= v.o.MaxBody && int64(len(prefix)) <= v.o.MaxBody
		if !whole && !streams {
			refuse(w, r, http.StatusRequestEntityTooLarge, tooLarge(r, "of unknown length"))
			return
		}
		// next gets a copy of r: the server's own request keeps the body it
		// read from, so that what it does with the rest after next returns
		// (discard it, or not when a client that sent Expect: 100-continue
		// was never told to go on) stays right.
		r2 := r.WithContext(context.WithValue(r.Context(), fingerprintKey{}, fp))
		if whole {
			sum := sha256.Sum256(prefix)
			if hex.EncodeToString(sum[:]) != claimed {
				refuse(w, r, http.StatusUnauthorized, fmt.Errorf("body sha256 does not match the signed %s: %w", HeaderContentSHA256, ErrBadSignature))
				return
			}
			if err := v.remember(a); err != nil {
				refuse(w, r, http.StatusUnauthorized, err)
				return
			}
			if body != http.NoBody {
				r2.Body = readCloser{bytes.NewReader(prefix), body}
				r2.ContentLength = int64(len(prefix))
			}
		} else {
			if err := v.remember(a); err != nil {
				refuse(w, r, http.StatusUnauthorized, err)
				return
			}
			r2.Body = &checkedBody{r: io.MultiReader(bytes.NewReader(prefix), body), c: body, h: sha256.New(), want: claimed}
		}
		next.ServeHTTP(w, r2)
	})
}

type readCloser struct {
	io.Reader
	io.Closer
}

// checkedBody hashes what it reads and fails at EOF if the hash is not the
// signed one.
type checkedBody struct {
	r    io.Reader
	c    io.Closer
	h    hash.Hash
	want string
	err  error // sticky: once the end is reached
}

func (b *checkedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(b.h.Sum(nil)); got != b.want {
			err = fmt.Errorf("body sha256 %s does not match the signed %s %s: %w", got, HeaderContentSHA256, b.want, ErrBadSignature)
		}
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *checkedBody) Close() error { return b.c.Close() }
