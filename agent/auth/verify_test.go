package auth_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent/auth"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// field returns the value of name in a DFLOW2 Authorization header.
func field(t testing.TB, authz, name string) string {
	t.Helper()
	m := regexp.MustCompile(`[ ,]` + name + `=([^,]*)`).FindStringSubmatch(authz)
	require.NotNil(t, m, "no %s in %q", name, authz)
	return m[1]
}

func setField(t testing.TB, req *http.Request, name, value string) {
	t.Helper()
	authz := req.Header.Get("Authorization")
	old := field(t, authz, name)
	req.Header.Set("Authorization", strings.Replace(authz, name+"="+old, name+"="+value, 1))
}

func TestMiddlewareAndVerify(t *testing.T) {
	alice := newEd25519(t)   // authorized
	mallory := newEd25519(t) // not authorized
	now := time.Now()

	// Each build returns a request for base and the body it carries.
	type build func(t *testing.T, base string) (*http.Request, string)
	signed := func(s ssh.Signer, method, target, body string, at time.Time, mutate func(*testing.T, *http.Request)) build {
		return func(t *testing.T, base string) (*http.Request, string) {
			req, err := http.NewRequest(method, base+target, strings.NewReader(body))
			require.NoError(t, err)
			if body == "" {
				req.Body = http.NoBody
			}
			require.NoError(t, auth.Sign(req, s, testNode, sha([]byte(body)), at))
			if mutate != nil {
				mutate(t, req)
			}
			return req, body
		}
	}
	withBody := func(b build, body string) build {
		return func(t *testing.T, base string) (*http.Request, string) {
			req, _ := b(t, base)
			req.Body, req.ContentLength, req.GetBody = http.NoBody, 0, nil
			if body != "" {
				r, _ := http.NewRequest(req.Method, base, strings.NewReader(body))
				req.Body, req.ContentLength = r.Body, r.ContentLength
			}
			return req, body
		}
	}

	signedFor := func(s ssh.Signer, node, method, target, body string, at time.Time) build {
		return func(t *testing.T, base string) (*http.Request, string) {
			req, err := http.NewRequest(method, base+target, strings.NewReader(body))
			require.NoError(t, err)
			require.NoError(t, auth.Sign(req, s, node, sha([]byte(body)), at))
			return req, body
		}
	}

	cases := []struct {
		name      string
		opts      auth.VerifierOptions
		noNode    bool // keep opts.Node ""
		build     build
		want      error // nil: accepted
		sendTwice bool  // the second send must be refused with want
	}{
		{name: "good GET", build: signed(alice, "GET", "/v1/status", "", now, nil)},
		{name: "good POST with query and body", build: signed(alice, "POST", "/v1/deploy?version=abc&n=1", `{"a":1}`, now, nil)},
		{name: "good: host differs only in case", build: signed(alice, "GET", "/v1/status", "", now, nil)},
		{name: "good: ts at the edge of the window", build: signed(alice, "GET", "/", "", now.Add(-50*time.Second), nil)},
		{name: "unsigned", want: auth.ErrUnsigned, build: func(t *testing.T, base string) (*http.Request, string) {
			req, err := http.NewRequest("GET", base+"/v1/status", nil)
			require.NoError(t, err)
			return req, ""
		}},
		{name: "garbled: other scheme", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			r.Header.Set("Authorization", "Bearer abc")
		})},
		{name: "garbled: scheme in lower case", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			r.Header.Set("Authorization", "dflow2"+strings.TrimPrefix(r.Header.Get("Authorization"), "DFLOW2"))
		})},
		{name: "garbled: missing nonce", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", strings.Replace(a, ",nonce="+field(t, a, "nonce"), "", 1))
		})},
		{name: "garbled: fields reordered", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", "DFLOW2 ts="+field(t, a, "ts")+",key="+field(t, a, "key")+",nonce="+field(t, a, "nonce")+",sig="+field(t, a, "sig"))
		})},
		{name: "garbled: sig not base64", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			setField(t, r, "sig", "!!!!")
		})},
		{name: "garbled: sig not an ssh signature", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			setField(t, r, "sig", base64.StdEncoding.EncodeToString([]byte("xyz")))
		})},
		{name: "garbled: ts with a plus sign", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			setField(t, r, "ts", "+"+field(t, r.Header.Get("Authorization"), "ts"))
		})},
		{name: "garbled: short nonce", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			setField(t, r, "nonce", "abcd")
		})},
		{name: "garbled: upper case nonce", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			setField(t, r, "nonce", strings.ToUpper(field(t, r.Header.Get("Authorization"), "nonce")))
		})},
		{name: "garbled: key is not a fingerprint", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			setField(t, r, "key", "alice")
		})},
		{name: "no content hash header", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			r.Header.Del(auth.HeaderContentSHA256)
		})},
		{name: "two Authorization headers", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			r.Header.Add("Authorization", r.Header.Get("Authorization"))
		})},
		{name: "old scheme DFLOW1", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			r.Header.Set("Authorization", "DFLOW1"+strings.TrimPrefix(r.Header.Get("Authorization"), "DFLOW2"))
			r.Header.Del(auth.HeaderNode)
		})},
		{name: "no node header", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			r.Header.Del(auth.HeaderNode)
		})},
		{name: "two node headers", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			r.Header.Add(auth.HeaderNode, testNode)
		})},
		{name: "node header with a space", want: auth.ErrUnsigned, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			r.Header.Set(auth.HeaderNode, "node a")
		})},
		{name: "signed for another node", want: auth.ErrWrongNode, build: signedFor(alice, "node-b-9c0d", "POST", "/v1/processes", `{"id":"x"}`, now)},
		{name: "signed for another incarnation of this node", want: auth.ErrWrongNode, build: signedFor(alice, "node-a-0000", "GET", "/v1/processes", "", now)},
		{name: "this verifier has no node id", opts: auth.VerifierOptions{Node: ""}, noNode: true, want: auth.ErrWrongNode, build: signed(alice, "GET", "/", "", now, nil)},
		{name: "tampered node header", want: auth.ErrBadSignature, build: func(t *testing.T, base string) (*http.Request, string) {
			req, body := signedFor(alice, "node-b-9c0d", "GET", "/v1/processes", "", now)(t, base)
			req.Header.Set(auth.HeaderNode, testNode)
			return req, body
		}},
		{name: "unknown key", want: auth.ErrUnknownKey, build: signed(mallory, "GET", "/v1/status", "", now, nil)},
		{name: "wrong signature: another key claims to be alice", want: auth.ErrBadSignature, build: signed(mallory, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			setField(t, r, "key", ssh.FingerprintSHA256(alice.PublicKey()))
		})},
		{name: "wrong signature: taken from another request", want: auth.ErrBadSignature, build: signed(alice, "GET", "/v1/status", "", now, func(t *testing.T, r *http.Request) {
			other, err := http.NewRequest("GET", "http://"+r.URL.Host+"/v1/status", nil)
			require.NoError(t, err)
			require.NoError(t, auth.Sign(other, alice, testNode, auth.EmptySHA256, now))
			setField(t, r, "sig", field(t, other.Header.Get("Authorization"), "sig"))
		})},
		{name: "wrong signature: other nonce", want: auth.ErrBadSignature, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			setField(t, r, "nonce", strings.Repeat("ab", 16))
		})},
		{name: "wrong signature: other ts", want: auth.ErrBadSignature, build: signed(alice, "GET", "/", "", now, func(t *testing.T, r *http.Request) {
			ts := field(t, r.Header.Get("Authorization"), "ts")
			last := "1"
			if ts[len(ts)-1] == '1' {
				last = "2"
			}
			setField(t, r, "ts", ts[:len(ts)-1]+last)
		})},
		{name: "tampered method", want: auth.ErrBadSignature, build: signed(alice, "POST", "/v1/start", "", now, func(t *testing.T, r *http.Request) {
			r.Method = "DELETE"
		})},
		{name: "tampered path", want: auth.ErrBadSignature, build: signed(alice, "POST", "/v1/start", "", now, func(t *testing.T, r *http.Request) {
			r.URL.Path = "/v1/stop"
		})},
		{name: "tampered query", want: auth.ErrBadSignature, build: signed(alice, "POST", "/v1/start?version=a", "", now, func(t *testing.T, r *http.Request) {
			r.URL.RawQuery = "version=b"
		})},
		{name: "added query", want: auth.ErrBadSignature, build: signed(alice, "POST", "/v1/start", "", now, func(t *testing.T, r *http.Request) {
			r.URL.RawQuery = "force=1"
		})},
		{name: "tampered host: signed for another node", want: auth.ErrBadSignature, build: func(t *testing.T, base string) (*http.Request, string) {
			req, err := http.NewRequest("GET", base+"/v1/status", nil)
			require.NoError(t, err)
			req.Host = "node-b.example:7000"
			require.NoError(t, auth.Sign(req, alice, testNode, auth.EmptySHA256, now))
			req.Host = ""
			return req, ""
		}},
		{name: "tampered host: other port", want: auth.ErrBadSignature, build: func(t *testing.T, base string) (*http.Request, string) {
			req, err := http.NewRequest("GET", base+"/v1/status", nil)
			require.NoError(t, err)
			u, _ := url.Parse(base)
			req.Host = u.Hostname() + ":1"
			require.NoError(t, auth.Sign(req, alice, testNode, auth.EmptySHA256, now))
			req.Host = ""
			return req, ""
		}},
		{name: "tampered body", want: auth.ErrBadSignature, build: withBody(signed(alice, "POST", "/v1/x", "hello", now, nil), "jello")},
		{name: "body added", want: auth.ErrBadSignature, build: withBody(signed(alice, "POST", "/v1/x", "", now, nil), "jello")},
		{name: "body removed", want: auth.ErrBadSignature, build: withBody(signed(alice, "POST", "/v1/x", "hello", now, nil), "")},
		{name: "tampered body and hash header", want: auth.ErrBadSignature, build: withBody(signed(alice, "POST", "/v1/x", "hello", now, func(t *testing.T, r *http.Request) {
			r.Header.Set(auth.HeaderContentSHA256, sha([]byte("jello")))
		}), "jello")},
		{name: "expired: old", want: auth.ErrExpired, build: signed(alice, "GET", "/", "", now.Add(-2*time.Minute), nil)},
		{name: "expired: future", want: auth.ErrExpired, build: signed(alice, "GET", "/", "", now.Add(2*time.Minute), nil)},
		{name: "expired: narrow window", opts: auth.VerifierOptions{Window: 5 * time.Second}, want: auth.ErrExpired, build: signed(alice, "GET", "/", "", now.Add(-10*time.Second), nil)},
		{name: "before NotBefore", opts: auth.VerifierOptions{NotBefore: now.Add(-time.Second)}, want: auth.ErrExpired, build: signed(alice, "GET", "/", "", now.Add(-10*time.Second), nil)},
		{name: "after NotBefore", opts: auth.VerifierOptions{NotBefore: now.Add(-time.Second)}, build: signed(alice, "GET", "/", "", now, nil)},
		{name: "replayed", want: auth.ErrReplayed, sendTwice: true, build: signed(alice, "POST", "/v1/start", "go", now, nil)},
		{name: "replayed GET", want: auth.ErrReplayed, sendTwice: true, build: signed(alice, "GET", "/v1/status", "", now, nil)},
	}
	// "host differs only in case": sign for the upper case host.
	cases[2].build = func(t *testing.T, base string) (*http.Request, string) {
		req, err := http.NewRequest("GET", base+"/v1/status", nil)
		require.NoError(t, err)
		u, _ := url.Parse(base)
		req.Host = "LOCALHOST:" + u.Port()
		require.NoError(t, auth.Sign(req, alice, testNode, auth.EmptySHA256, now))
		req.Host = "localhost:" + u.Port()
		return req, ""
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Now = func() time.Time { return now }
			if !tc.noNode {
				opts.Node = testNode
			}
			keys := []ssh.PublicKey{alice.PublicKey()}

			// Through the middleware of a real server.
			srv := startServer(t, auth.NewVerifier(keys, opts))
			req, body := tc.build(t, srv.URL)
			again := req.Clone(req.Context())
			code, got, msg := send(t, nil, req)
			if tc.sendTwice {
				require.Equal(t, http.StatusOK, code, msg)
				again.Body = http.NoBody
				if body != "" {
					again.Body, again.ContentLength = ioNopCloser(body), int64(len(body))
				}
				code, _, msg = send(t, nil, again)
			}
			if tc.want == nil {
				require.Equal(t, http.StatusOK, code, msg)
				require.Equal(t, sha([]byte(body)), got.BodySHA256)
				require.Equal(t, ssh.FingerprintSHA256(alice.PublicKey()), got.Fingerprint)
				require.Equal(t, req.Method, got.Method)
			} else {
				require.Equal(t, http.StatusUnauthorized, code)
				require.Contains(t, msg, tc.want.Error())
				requireSentinel(t, tc.want, srv.lastRefusal(t))
				wantCalls := 0
				if tc.sendTwice {
					wantCalls = 1
				}
				require.Equal(t, wantCalls, srv.handlerCalls(), "the handler ran for a refused request")
			}

			// Directly through Verify, on the client's request.
			v := auth.NewVerifier(keys, opts)
			req, body = tc.build(t, srv.URL)
			err := v.Verify(req, sha([]byte(body)))
			if tc.sendTwice {
				require.NoError(t, err)
				err = v.Verify(req, sha([]byte(body)))
			}
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				requireSentinel(t, tc.want, err)
			}
		})
	}
}

func ioNopCloser(s string) *nopCloser { return &nopCloser{strings.NewReader(s)} }

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func TestMiddlewareLogsOneLineWithoutSecrets(t *testing.T) {
	alice, mallory := newEd25519(t), newEd25519(t)
	srv := startServer(t, auth.NewVerifier([]ssh.PublicKey{alice.PublicKey()}, auth.VerifierOptions{Node: testNode}))
	req, err := http.NewRequest("PUT", srv.URL+"/v1/secret%0Apath?token=x", strings.NewReader("body"))
	require.NoError(t, err)
	require.NoError(t, auth.Sign(req, mallory, testNode, sha([]byte("body")), time.Now()))
	authz := req.Header.Get("Authorization")
	code, _, msg := send(t, nil, req)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, msg, "unknown key")

	srv.mu.Lock()
	defer srv.mu.Unlock()
	require.Len(t, srv.logs, 1)
	line := srv.logs[0]
	require.NotContains(t, line, "\n", "a request path must not break the log line")
	require.Contains(t, line, `"PUT"`)
	require.Contains(t, line, `/v1/secret\npath`)
	require.Contains(t, line, "127.0.0.1:")
	require.Contains(t, line, "unknown key")
	require.NotContains(t, line, field(t, authz, "sig"))
	require.NotContains(t, line, "token=x")
}

func TestSetKeys(t *testing.T) {
	alice, bob := newEd25519(t), newEd25519(t)
	v := auth.NewVerifier([]ssh.PublicKey{alice.PublicKey()}, auth.VerifierOptions{Node: testNode})
	srv := startServer(t, v)
	get := func(s ssh.Signer) (int, string) {
		c := &http.Client{Transport: &auth.Transport{Signer: s, Node: testNode}}
		req, err := http.NewRequest("GET", srv.URL+"/v1/status", nil)
		require.NoError(t, err)
		code, _, msg := send(t, c, req)
		return code, msg
	}
	code, _ := get(alice)
	require.Equal(t, http.StatusOK, code)
	code, _ = get(bob)
	require.Equal(t, http.StatusUnauthorized, code)

	v.SetKeys([]ssh.PublicKey{bob.PublicKey()})
	code, msg := get(alice)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, msg, auth.ErrUnknownKey.Error())
	code, _ = get(bob)
	require.Equal(t, http.StatusOK, code)
}

// The same signed request sent concurrently is accepted exactly once.
func TestConcurrentReplay(t *testing.T) {
	alice := newEd25519(t)
	srv := startServer(t, auth.NewVerifier([]ssh.PublicKey{alice.PublicKey()}, auth.VerifierOptions{Node: testNode}))
	orig, err := http.NewRequest("POST", srv.URL+"/v1/start", nil)
	require.NoError(t, err)
	require.NoError(t, auth.Sign(orig, alice, testNode, auth.EmptySHA256, time.Now()))

	const n = 32
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req := orig.Clone(orig.Context())
			req.Body = http.NoBody
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				codes[i] = resp.StatusCode
				_ = resp.Body.Close()
			}
		})
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusUnauthorized:
			refused++
		}
	}
	require.Equal(t, 1, ok)
	require.Equal(t, n-1, refused)
	requireSentinel(t, auth.ErrReplayed, srv.lastRefusal(t))
}

// A client of the scheme before (DFLOW1, no node) learns why it is refused.
func TestOldSchemeIsRefusedClearly(t *testing.T) {
	alice := newEd25519(t)
	srv := startServer(t, auth.NewVerifier([]ssh.PublicKey{alice.PublicKey()}, auth.VerifierOptions{Node: testNode}))
	req, err := http.NewRequest("GET", srv.URL+"/v1/status", nil)
	require.NoError(t, err)
	require.NoError(t, auth.Sign(req, alice, testNode, auth.EmptySHA256, time.Now()))
	req.Header.Set("Authorization", "DFLOW1"+strings.TrimPrefix(req.Header.Get("Authorization"), "DFLOW2"))
	req.Header.Del(auth.HeaderNode)
	code, _, msg := send(t, nil, req)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, msg, "DFLOW1 is no longer accepted")
	require.Contains(t, msg, "upgrade the client")
}
