package auth_test

import (
	"bytes"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent/auth"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// bigBody is n deterministic pseudo-random bytes.
func bigBody(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := mrand.New(mrand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// stream returns a body of unknown length (no GetBody, chunked on the wire).
func stream(b []byte) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		for off := 0; off < len(b); off += 32 << 10 {
			if _, err := pw.Write(b[off:min(off+32<<10, len(b))]); err != nil {
				return
			}
		}
		_ = pw.Close()
	}()
	return pr
}

func TestTransport(t *testing.T) {
	alice := newEd25519(t)
	big := bigBody(3<<20, 1)
	other := bigBody(3<<20, 2)

	cases := []struct {
		name     string
		req      func(t *testing.T, base string) *http.Request
		wantCode int
		wantBody []byte // what the handler must have read (200)
		want     error  // refusal (401) or handler read error (422)
	}{
		{name: "GET", wantCode: http.StatusOK, req: func(t *testing.T, base string) *http.Request {
			req, err := http.NewRequest("GET", base+"/v1/status?x=1", nil)
			require.NoError(t, err)
			return req
		}},
		{name: "POST with body (GetBody)", wantCode: http.StatusOK, wantBody: []byte(`{"v":"abc"}`), req: func(t *testing.T, base string) *http.Request {
			req, err := http.NewRequest("POST", base+"/v1/start", strings.NewReader(`{"v":"abc"}`))
			require.NoError(t, err)
			require.NotNil(t, req.GetBody)
			return req
		}},
		{name: "POST with body (buffered)", wantCode: http.StatusOK, wantBody: []byte("hello, agent"), req: func(t *testing.T, base string) *http.Request {
			req, err := http.NewRequest("POST", base+"/v1/start", io.MultiReader(strings.NewReader("hello, "), strings.NewReader("agent")))
			require.NoError(t, err)
			require.Nil(t, req.GetBody)
			return req
		}},
		{name: "PUT of 3 MiB, hashed by the transport", wantCode: http.StatusOK, wantBody: big, req: func(t *testing.T, base string) *http.Request {
			req, err := http.NewRequest("PUT", base+"/v1/artifacts/x", bytes.NewReader(big))
			require.NoError(t, err)
			return req
		}},
		{name: "streamed 3 MiB with pre-set hash", wantCode: http.StatusOK, wantBody: big, req: func(t *testing.T, base string) *http.Request {
			req, err := http.NewRequest("PUT", base+"/v1/artifacts/x", stream(big))
			require.NoError(t, err)
			req.Header.Set(auth.HeaderContentSHA256, sha(big))
			return req
		}},
		{name: "3 MiB of known length with pre-set hash", wantCode: http.StatusOK, wantBody: big, req: func(t *testing.T, base string) *http.Request {
			req, err := http.NewRequest("PUT", base+"/v1/artifacts/x", io.NopCloser(bytes.NewReader(big)))
			require.NoError(t, err)
			req.ContentLength = int64(len(big))
			req.Header.Set(auth.HeaderContentSHA256, sha(big))
			return req
		}},
		{name: "streamed 3 MiB with mismatching pre-set hash", wantCode: http.StatusUnprocessableEntity, want: auth.ErrBadSignature, req: func(t *testing.T, base string) *http.Request {
			req, err := http.NewRequest("PUT", base+"/v1/artifacts/x", stream(other))
			require.NoError(t, err)
			req.Header.Set(auth.HeaderContentSHA256, sha(big))
			return req
		}},
		{name: "3 MiB of known length with mismatching pre-set hash", wantCode: http.StatusUnprocessableEntity, want: auth.ErrBadSignature, req: func(t *testing.T, base string) *http.Request {
			req, err := http.NewRequest("PUT", base+"/v1/artifacts/x", io.NopCloser(bytes.NewReader(other)))
			require.NoError(t, err)
			req.ContentLength = int64(len(other))
			req.Header.Set(auth.HeaderContentSHA256, sha(big))
			return req
		}},
		{name: "POST of 3 MiB, which may not stream", wantCode: http.StatusRequestEntityTooLarge, want: auth.ErrBodyTooLarge, req: func(t *testing.T, base string) *http.Request {
			req, err := http.NewRequest("POST", base+"/v1/processes", bytes.NewReader(big))
			require.NoError(t, err)
			return req
		}},
		{name: "chunked POST of 3 MiB, which may not stream", wantCode: http.StatusRequestEntityTooLarge, want: auth.ErrBodyTooLarge, req: func(t *testing.T, base string) *http.Request {
			req, err := http.NewRequest("POST", base+"/v1/processes", stream(big))
			require.NoError(t, err)
			req.Header.Set(auth.HeaderContentSHA256, sha(big))
			return req
		}},
		{name: "small body with mismatching pre-set hash", wantCode: http.StatusUnauthorized, want: auth.ErrBadSignature, req: func(t *testing.T, base string) *http.Request {
			req, err := http.NewRequest("POST", base+"/v1/start", stream([]byte("small")))
			require.NoError(t, err)
			req.Header.Set(auth.HeaderContentSHA256, sha([]byte("other")))
			return req
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, auth.NewVerifier([]ssh.PublicKey{alice.PublicKey()}, auth.VerifierOptions{
				Node:   testNode,
				Stream: func(r *http.Request) bool { return r.Method == http.MethodPut },
			}))
			c := &http.Client{Transport: &auth.Transport{Signer: alice, Node: testNode}}
			req := tc.req(t, srv.URL)
			code, got, msg := send(t, c, req)
			require.Equal(t, tc.wantCode, code, "%s %s", msg, got.ReadErr)
			require.Empty(t, req.Header.Get("Authorization"), "the transport modified the caller's request")
			switch code {
			case http.StatusOK:
				require.Empty(t, got.ReadErr)
				require.Equal(t, sha(tc.wantBody), got.BodySHA256)
				require.Equal(t, len(tc.wantBody), got.BodyLen)
				require.Equal(t, req.Method, got.Method)
				require.Equal(t, ssh.FingerprintSHA256(alice.PublicKey()), got.Fingerprint)
			case http.StatusUnprocessableEntity:
				// The handler read the whole body and saw the error at the end.
				require.True(t, strings.HasPrefix(got.ReadErr, "BAD SIGNATURE: "), got.ReadErr)
				require.Equal(t, len(other), got.BodyLen)
			case http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
				require.Contains(t, msg, tc.want.Error())
				requireSentinel(t, tc.want, srv.lastRefusal(t))
				require.Zero(t, srv.handlerCalls())
			}
		})
	}
}

func TestTransportErrors(t *testing.T) {
	alice := newEd25519(t)
	srv := startServer(t, auth.NewVerifier([]ssh.PublicKey{alice.PublicKey()}, auth.VerifierOptions{Node: testNode}))

	req, err := http.NewRequest("GET", srv.URL, nil)
	require.NoError(t, err)
	_, err = (&http.Client{Transport: &auth.Transport{}}).Do(req)
	require.ErrorContains(t, err, "no signer")

	req, err = http.NewRequest("GET", srv.URL, nil)
	require.NoError(t, err)
	_, err = (&http.Client{Transport: &auth.Transport{Signer: alice}}).Do(req)
	require.ErrorContains(t, err, "node id")

	// Signed for another node: refused with both names.
	req, err = http.NewRequest("GET", srv.URL, nil)
	require.NoError(t, err)
	code, _, msg := send(t, &http.Client{Transport: &auth.Transport{Signer: alice, Node: "node-b"}}, req)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, msg, `signed for node "node-b", this is node "`+testNode+`"`)

	req, err = http.NewRequest("POST", srv.URL, strings.NewReader("x"))
	require.NoError(t, err)
	req.Header.Set(auth.HeaderContentSHA256, "not-a-hash")
	_, err = (&http.Client{Transport: &auth.Transport{Signer: alice, Node: testNode}}).Do(req)
	require.ErrorContains(t, err, "not 64 hex digits")

	// A transport whose clock is off is refused as expired.
	skewed := &auth.Transport{Signer: alice, Node: testNode, Now: func() time.Time { return time.Now().Add(-time.Hour) }}
	req, err = http.NewRequest("GET", srv.URL, nil)
	require.NoError(t, err)
	code, _, msg = send(t, &http.Client{Transport: skewed}, req)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, msg, auth.ErrExpired.Error())
}

// Every key type OpenSSH puts in authorized_keys signs and verifies.
func TestKeyTypes(t *testing.T) {
	rsa2048 := newRSA(t, 2048)
	rsaAlgo, ok := rsa2048.(ssh.AlgorithmSigner)
	require.True(t, ok)
	rsa256, err := ssh.NewSignerWithAlgorithms(rsaAlgo, []string{ssh.KeyAlgoRSASHA256})
	require.NoError(t, err)
	signers := map[string]ssh.Signer{
		"ed25519":                newEd25519(t),
		"ecdsa-p256":             newECDSA(t, elliptic.P256()),
		"ecdsa-p384":             newECDSA(t, elliptic.P384()),
		"ecdsa-p521":             newECDSA(t, elliptic.P521()),
		"rsa-2048":               rsa2048,
		"rsa-2048 sha2-256 only": rsa256,
	}
	for name, s := range signers {
		t.Run(name, func(t *testing.T) {
			// The key goes through an authorized_keys file, as on a node.
			keys, err := auth.ParseAuthorizedKeys("authorized_keys", ssh.MarshalAuthorizedKey(s.PublicKey()))
			require.NoError(t, err)
			srv := startServer(t, auth.NewVerifier(keys, auth.VerifierOptions{Node: testNode}))
			c := &http.Client{Transport: &auth.Transport{Signer: s, Node: testNode}}
			req, err := http.NewRequest("POST", srv.URL+"/v1/start", strings.NewReader("x"))
			require.NoError(t, err)
			code, got, msg := send(t, c, req)
			require.Equal(t, http.StatusOK, code, msg)
			require.Equal(t, ssh.FingerprintSHA256(s.PublicKey()), got.Fingerprint)
		})
	}

	t.Run("rsa with SHA-1 is refused", func(t *testing.T) {
		v := auth.NewVerifier([]ssh.PublicKey{rsa2048.PublicKey()}, auth.VerifierOptions{Node: testNode})
		req, err := http.NewRequest("GET", "http://node-a:7000/v1/status", nil)
		require.NoError(t, err)
		require.NoError(t, auth.Sign(req, rsa2048, testNode, auth.EmptySHA256, time.Now()))
		require.NoError(t, v.Verify(req, auth.EmptySHA256))

		// Re-sign the same string with ssh-rsa (SHA-1).
		authz := req.Header.Get("Authorization")
		data := "DFLOW2\nGET\nnode-a:7000\n" + testNode + "\n/v1/status\n" + field(t, authz, "ts") + "\n" + field(t, authz, "nonce") + "\n" + auth.EmptySHA256
		sig, err := rsaAlgo.SignWithAlgorithm(rand.Reader, []byte(data), ssh.KeyAlgoRSA)
		require.NoError(t, err)
		require.NoError(t, rsa2048.PublicKey().Verify([]byte(data), sig), "the test must build the signed string right")
		setField(t, req, "sig", base64.StdEncoding.EncodeToString(ssh.Marshal(sig)))
		requireSentinel(t, auth.ErrBadSignature, auth.NewVerifier([]ssh.PublicKey{rsa2048.PublicKey()}, auth.VerifierOptions{Node: testNode}).Verify(req, auth.EmptySHA256))
	})
}

// The signed string is exactly the documented one.
func TestSignedStringIsDocumented(t *testing.T) {
	s := newEd25519(t)
	req, err := http.NewRequest("PATCH", "http://Node-A.example:7000/v1/x%2Fy?b=2&a=1", nil)
	require.NoError(t, err)
	at := time.Unix(1700000000, 123)
	require.NoError(t, auth.Sign(req, s, testNode, auth.EmptySHA256, at))
	authz := req.Header.Get("Authorization")
	require.Regexp(t, `^DFLOW2 key=SHA256:[A-Za-z0-9+/]{43},ts=1700000000000000123,nonce=[0-9a-f]{32},sig=[A-Za-z0-9+/]+=*$`, authz)
	require.Equal(t, auth.EmptySHA256, req.Header.Get(auth.HeaderContentSHA256))
	require.Equal(t, testNode, req.Header.Get(auth.HeaderNode))
	blob, err := base64.StdEncoding.DecodeString(field(t, authz, "sig"))
	require.NoError(t, err)
	var sig ssh.Signature
	require.NoError(t, ssh.Unmarshal(blob, &sig))
	data := "DFLOW2\nPATCH\nnode-a.example:7000\n" + testNode + "\n/v1/x%2Fy?b=2&a=1\n1700000000000000123\n" + field(t, authz, "nonce") + "\n" + auth.EmptySHA256
	require.NoError(t, s.PublicKey().Verify([]byte(data), &sig))
}
