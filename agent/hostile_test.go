package agent_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent"
	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/agent/auth"
	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// This file is a hostile client against a real agent on a real TCP port:
// every request below is refused with the status it should get, and the
// agent's state (its processes, its artifacts and their files, what serves
// its public port) is the same afterwards.

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// signedReq is a request to n's API for path, with body, signed by s for
// node at time at. Its body is sent with a Content-Length.
func signedReq(t *testing.T, n node, s ssh.Signer, nodeID, method, path string, body []byte, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.a.Addr()+path, bytes.NewReader(body))
	require.NoError(t, err)
	if body == nil {
		req.Body = http.NoBody
	}
	require.NoError(t, auth.Sign(req, s, nodeID, hexSHA(body), at))
	return req
}

// withBody replaces req's body by body, sent with a Content-Length of
// length (-1: chunked).
func withBody(req *http.Request, body []byte, length int64) *http.Request {
	req.Body, req.GetBody = io.NopCloser(bytes.NewReader(body)), nil
	req.ContentLength = length
	if length < 0 {
		req.Body = io.NopCloser(struct{ io.Reader }{bytes.NewReader(body)})
	}
	return req
}

// answer is what came back: the status and the agent's error message.
type answer struct {
	status int
	msg    string
}

// sendRaw writes req to a new connection to addr, then (unless body is
// nil) body as is, then half-closes the connection when closeWrite, and
// reads one answer. It does not wait for its writes to finish before
// reading: the agent may answer before it has read them.
func sendRaw(t *testing.T, addr string, req *http.Request, body []byte, closeWrite bool) answer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(20*time.Second)))
	go func() {
		w := bufio.NewWriterSize(conn, 64<<10)
		// Header only (the body goes below): req.Write would send the body.
		fmt.Fprintf(w, "%s %s HTTP/1.1\r\nHost: %s\r\n", req.Method, req.URL.RequestURI(), req.Host)
		_ = req.Header.Write(w)
		if req.ContentLength >= 0 {
			fmt.Fprintf(w, "Content-Length: %d\r\n", req.ContentLength)
		}
		fmt.Fprintf(w, "\r\n")
		if body != nil {
			_, _ = w.Write(body)
		}
		_ = w.Flush()
		if closeWrite {
			_ = conn.(*net.TCPConn).CloseWrite()
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	return readAnswer(t, resp)
}

func readAnswer(t *testing.T, resp *http.Response) answer {
	t.Helper()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = string(b)
	}
	return answer{resp.StatusCode, e.Error}
}

// send sends req with a client that never retries nor keeps connections.
func send(t *testing.T, req *http.Request) answer {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}, Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return readAnswer(t, resp)
}

// chunked is body in HTTP/1.1 chunked encoding.
func chunked(body []byte) []byte {
	var b bytes.Buffer
	for rest := body; len(rest) > 0; {
		n := min(len(rest), 32<<10)
		fmt.Fprintf(&b, "%x\r\n", n)
		b.Write(rest[:n])
		b.WriteString("\r\n")
		rest = rest[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.Bytes()
}

// agentState is what a refused request must not change.
type agentState struct {
	Procs     api.ProcessList
	Artifacts []api.ArtifactInfo
	Files     []string // in <dir>/artifacts: blobs and temp files
	Releases  []string // unpacked
	Public    string   // what the public port answers
}

func stateOf(t *testing.T, n node, publicURL string) agentState {
	t.Helper()
	ctx := context.Background()
	var st agentState
	var err error
	st.Procs, err = n.c.Processes(ctx)
	require.NoError(t, err)
	st.Artifacts, err = n.c.Artifacts(ctx)
	require.NoError(t, err)
	for _, d := range []string{"artifacts", "releases"} {
		des, err := os.ReadDir(filepath.Join(n.dir, d))
		require.NoError(t, err)
		for _, de := range des {
			if d == "artifacts" {
				st.Files = append(st.Files, de.Name())
			} else {
				st.Releases = append(st.Releases, de.Name())
			}
		}
	}
	if publicURL != "" {
		code, body, err := testsuite.Post(http.DefaultClient, publicURL, "probe")
		require.NoError(t, err)
		st.Public = strconv.Itoa(code) + " " + body
	}
	return st
}

func TestHostileClient(t *testing.T) {
	mallory := testsuite.NewSigner(t) // not authorized
	_, digest, bundleSize := testBundle(t)
	const nodeID = "hostile-node-3-a1b2"
	maxArtifact := bundleSize + 2<<20
	n := startAgentWith(t, testsuite.NewSigner(t), func(o *agent.Options) {
		o.NodeID = nodeID
		o.MaxArtifact = maxArtifact
	})
	alice := n.signer
	addr := n.a.Addr()
	ctx := context.Background()

	// The state to keep: an artifact, an instance serving the public port.
	putBundle(t, n)
	_, err := n.c.StartProcess(ctx, startReq("h1", "v1", digest))
	require.NoError(t, err)
	appPort := testsuite.FreePort(t)
	_, err = n.c.Switch(ctx, api.SwitchRequest{ID: "h1", AppPort: appPort})
	require.NoError(t, err)
	public := fmt.Sprintf("http://127.0.0.1:%d/", appPort)
	before := stateOf(t, n, public)
	require.Equal(t, "200 v1:probe", before.Public)
	require.Len(t, before.Artifacts, 1)

	now := time.Now
	startJSON := func(id string, env ...string) []byte {
		b, err := json.Marshal(startReq(id, "v-"+id, digest, env...))
		require.NoError(t, err)
		return b
	}
	// A start request over 1 MiB: the cap of a JSON body.
	big := startReq("x-big", "v-big", digest)
	big.Env["PAD"] = strings.Repeat("p", auth.DefaultMaxBody)
	bigJSON, err := json.Marshal(big)
	require.NoError(t, err)
	evilJSON := startJSON("evil", "LD_PRELOAD=/tmp/evil.so")
	switchJSON, err := json.Marshal(api.SwitchRequest{ID: "h1", AppPort: appPort})
	require.NoError(t, err)
	// Uploads: content that is not what its digest says, and one too large.
	wrongContent := bytes.Repeat([]byte("not the bundle "), 200_000) // 3 MB
	tooLarge := make([]byte, maxArtifact+1)
	tooLargeDigest := hexSHA(tooLarge)

	cases := []struct {
		name   string
		send   func(t *testing.T) answer
		status int
		msg    string // in the agent's answer
	}{
		{name: "unsigned", status: http.StatusUnauthorized, msg: "no Authorization header", send: func(t *testing.T) answer {
			req, err := http.NewRequest("POST", "http://"+addr+"/v1/processes", bytes.NewReader(evilJSON))
			require.NoError(t, err)
			return send(t, req)
		}},
		{name: "wrong key", status: http.StatusUnauthorized, msg: "is not authorized", send: func(t *testing.T) answer {
			return send(t, signedReq(t, n, mallory, nodeID, "POST", "/v1/processes", evilJSON, now()))
		}},
		{name: "signed for another node", status: http.StatusUnauthorized, msg: `signed for node "hostile-node-4-c3d4", this is node "` + nodeID + `"`, send: func(t *testing.T) answer {
			return send(t, signedReq(t, n, alice, "hostile-node-4-c3d4", "POST", "/v1/processes", evilJSON, now()))
		}},
		{name: "signed for another node, node header rewritten", status: http.StatusUnauthorized, msg: "bad signature", send: func(t *testing.T) answer {
			req := signedReq(t, n, alice, "hostile-node-4-c3d4", "POST", "/v1/processes", evilJSON, now())
			req.Header.Set(auth.HeaderNode, nodeID)
			return send(t, req)
		}},
		{name: "old scheme (DFLOW1, no node)", status: http.StatusUnauthorized, msg: "DFLOW1 is no longer accepted", send: func(t *testing.T) answer {
			req := signedReq(t, n, alice, nodeID, "POST", "/v1/processes", evilJSON, now())
			req.Header.Set("Authorization", "DFLOW1"+strings.TrimPrefix(req.Header.Get("Authorization"), "DFLOW2"))
			req.Header.Del(auth.HeaderNode)
			return send(t, req)
		}},
		{name: "replay", status: http.StatusUnauthorized, msg: "already used", send: func(t *testing.T) answer {
			// An idempotent switch, accepted once, then replayed.
			req := signedReq(t, n, alice, nodeID, "POST", "/v1/switch", switchJSON, now())
			replay := req.Clone(ctx)
			require.Equal(t, http.StatusOK, send(t, req).status)
			return send(t, withBody(replay, switchJSON, int64(len(switchJSON))))
		}},
		{name: "stale timestamp", status: http.StatusUnauthorized, msg: "from the agent's clock", send: func(t *testing.T) answer {
			return send(t, signedReq(t, n, alice, nodeID, "POST", "/v1/processes", evilJSON, now().Add(-2*time.Minute)))
		}},
		{name: "future timestamp", status: http.StatusUnauthorized, msg: "from the agent's clock", send: func(t *testing.T) answer {
			return send(t, signedReq(t, n, alice, nodeID, "POST", "/v1/processes", evilJSON, now().Add(2*time.Minute)))
		}},
		{name: "tampered method", status: http.StatusUnauthorized, msg: "bad signature", send: func(t *testing.T) answer {
			req := signedReq(t, n, alice, nodeID, "GET", "/v1/artifacts", nil, now())
			req.Method = "DELETE"
			req.URL.Path = "/v1/artifacts/" + digest
			return send(t, req)
		}},
		{name: "tampered path", status: http.StatusUnauthorized, msg: "bad signature", send: func(t *testing.T) answer {
			req := signedReq(t, n, alice, nodeID, "POST", "/v1/processes/nobody/stop", nil, now())
			req.URL.Path = "/v1/processes/h1/stop"
			return send(t, req)
		}},
		{name: "tampered query", status: http.StatusUnauthorized, msg: "bad signature", send: func(t *testing.T) answer {
			req := signedReq(t, n, alice, nodeID, "PUT", "/v1/artifacts/"+digest, nil, now())
			req.URL.RawQuery = "force=1"
			return send(t, req)
		}},
		{name: "tampered body: one byte", status: http.StatusUnauthorized, msg: "body sha256 does not match", send: func(t *testing.T) answer {
			req := signedReq(t, n, alice, nodeID, "POST", "/v1/processes", startJSON("x-ok"), now())
			return send(t, withBody(req, startJSON("x-ko"), int64(len(startJSON("x-ko")))))
		}},
		{name: "body swap, chunked", status: http.StatusUnauthorized, msg: "body sha256 does not match", send: func(t *testing.T) answer {
			req := signedReq(t, n, alice, nodeID, "POST", "/v1/processes", startJSON("x-signed"), now())
			return send(t, withBody(req, evilJSON, -1))
		}},
		{name: "body swap, over 1 MiB with a Content-Length: refused before reading", status: http.StatusRequestEntityTooLarge, msg: "more than the 1048576 bytes", send: func(t *testing.T) answer {
			req := signedReq(t, n, alice, nodeID, "POST", "/v1/processes", bigJSON, now())
			// Only the header goes: the answer comes without the body.
			return sendRaw(t, addr, req, nil, false)
		}},
		{name: "body swap, over 1 MiB chunked", status: http.StatusRequestEntityTooLarge, msg: "of unknown length", send: func(t *testing.T) answer {
			req := signedReq(t, n, alice, nodeID, "POST", "/v1/processes", bigJSON, now())
			req.ContentLength = -1
			req.Header.Set("Transfer-Encoding", "chunked")
			swapped := append(append([]byte{}, evilJSON...), bytes.Repeat([]byte(" "), len(bigJSON)-len(evilJSON))...)
			return sendRaw(t, addr, req, chunked(swapped), false)
		}},
		{name: "trailing garbage after the JSON value (signed)", status: http.StatusBadRequest, msg: "trailing data", send: func(t *testing.T) answer {
			return send(t, signedReq(t, n, alice, nodeID, "POST", "/v1/processes", append(startJSON("x-trail"), []byte(" garbage")...), now()))
		}},
		{name: "a second JSON value (signed)", status: http.StatusBadRequest, msg: "a second JSON value", send: func(t *testing.T) answer {
			return send(t, signedReq(t, n, alice, nodeID, "POST", "/v1/processes", append(startJSON("x-one"), evilJSON...), now()))
		}},
		{name: "truncated body", status: http.StatusBadRequest, msg: "read body", send: func(t *testing.T) answer {
			body := startJSON("x-cut")
			req := signedReq(t, n, alice, nodeID, "POST", "/v1/processes", body, now())
			return sendRaw(t, addr, req, body[:len(body)/2], true)
		}},
		{name: "oversized JSON body (signed), by Content-Length: refused before reading", status: http.StatusRequestEntityTooLarge, msg: "more than the 1048576 bytes", send: func(t *testing.T) answer {
			// A client that waits to be asked for the body gets the answer
			// instead (one that sends it anyway may see the connection
			// reset under its feet: the agent does not read what it refused).
			req := signedReq(t, n, alice, nodeID, "POST", "/v1/processes", bigJSON, now())
			req.Header.Set("Expect", "100-continue")
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, ExpectContinueTimeout: 10 * time.Second}}
			resp, err := c.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			return readAnswer(t, resp)
		}},
		{name: "oversized JSON body (signed), chunked", status: http.StatusRequestEntityTooLarge, msg: "of unknown length", send: func(t *testing.T) answer {
			req := signedReq(t, n, alice, nodeID, "POST", "/v1/processes", bigJSON, now())
			req.ContentLength = -1
			req.Header.Set("Transfer-Encoding", "chunked")
			return sendRaw(t, addr, req, chunked(bigJSON), false)
		}},
		{name: "oversized upload, by Content-Length: refused before reading", status: http.StatusRequestEntityTooLarge, msg: "a blob may have", send: func(t *testing.T) answer {
			req := signedStream(t, signedReq(t, n, alice, nodeID, "PUT", "/v1/artifacts/"+tooLargeDigest, nil, now()), alice, nodeID, tooLargeDigest, int64(len(tooLarge)))
			return sendRaw(t, addr, req, nil, false) // no body sent at all
		}},
		{name: "oversized upload, chunked: stopped at the cap", status: http.StatusRequestEntityTooLarge, msg: "a blob may have", send: func(t *testing.T) answer {
			req := signedStream(t, signedReq(t, n, alice, nodeID, "PUT", "/v1/artifacts/"+tooLargeDigest, nil, now()), alice, nodeID, tooLargeDigest, -1)
			req.Header.Set("Transfer-Encoding", "chunked")
			return sendRaw(t, addr, req, chunked(tooLarge), false)
		}},
		{name: "upload with wrong content, streamed", status: http.StatusBadRequest, msg: "content does not match the digest", send: func(t *testing.T) answer {
			d := hexSHA(tooLarge[:3_000_000])
			req := signedStream(t, signedReq(t, n, alice, nodeID, "PUT", "/v1/artifacts/"+d, nil, now()), alice, nodeID, d, int64(len(wrongContent)))
			return send(t, withBody(req, wrongContent, int64(len(wrongContent))))
		}},
		{name: "upload with wrong content, chunked", status: http.StatusBadRequest, msg: "content does not match the digest", send: func(t *testing.T) answer {
			d := hexSHA(tooLarge[:3_000_000])
			req := signedStream(t, signedReq(t, n, alice, nodeID, "PUT", "/v1/artifacts/"+d, nil, now()), alice, nodeID, d, -1)
			return send(t, withBody(req, wrongContent, -1))
		}},
		{name: "upload cut short", status: http.StatusBadRequest, msg: "cut short", send: func(t *testing.T) answer {
			d := hexSHA(tooLarge[:3_000_000])
			req := signedStream(t, signedReq(t, n, alice, nodeID, "PUT", "/v1/artifacts/"+d, nil, now()), alice, nodeID, d, 3_000_000)
			return sendRaw(t, addr, req, tooLarge[:2_000_000], true)
		}},
		{name: "huge headers", status: http.StatusRequestHeaderFieldsTooLarge, msg: "", send: func(t *testing.T) answer {
			req := signedReq(t, n, alice, nodeID, "GET", "/v1/processes", nil, now())
			req.Header.Set("X-Padding", strings.Repeat("h", 256<<10))
			return sendRaw(t, addr, req, nil, false)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.send(t)
			require.Equal(t, tc.status, got.status, "answer: %s", got.msg)
			require.Contains(t, got.msg, tc.msg)
			require.Equal(t, before, stateOf(t, n, public), "a refused request changed the agent's state")
		})
	}
}

// signedStream re-signs req as PutArtifact streams an upload: the signed
// content hash is the digest, the body comes later with a Content-Length of
// length (-1: chunked).
func signedStream(t *testing.T, req *http.Request, s ssh.Signer, nodeID, digest string, length int64) *http.Request {
	t.Helper()
	require.NoError(t, auth.Sign(req, s, nodeID, digest, time.Now()))
	req.ContentLength = length
	return req
}

// A request accepted before an agent restarts is refused by the agent after
// it, even within the time window: the new process's replay cache is empty,
// and it refuses what was signed before it started.
func TestReplayAcrossAgentRestart(t *testing.T) {
	const nodeID = "restart-node-0-ffee"
	n := startAgentWith(t, testsuite.NewSigner(t), func(o *agent.Options) { o.NodeID = nodeID })
	req := signedReq(t, n, n.signer, nodeID, "GET", "/v1/processes", nil, time.Now())
	replay := req.Clone(context.Background())
	unsent := signedReq(t, n, n.signer, nodeID, "GET", "/v1/artifacts", nil, time.Now())
	require.Equal(t, http.StatusOK, send(t, req).status)

	addr := n.a.Addr()
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	require.NoError(t, n.a.Stop(sctx))
	again := startAgentWith(t, n.signer, func(o *agent.Options) {
		o.Dir, o.Listen, o.NodeID = n.dir, addr, nodeID
	})
	require.Equal(t, addr, again.a.Addr())
	for name, r := range map[string]*http.Request{"replayed": replay, "signed before the restart, never sent": unsent} {
		got := send(t, r)
		require.Equal(t, http.StatusUnauthorized, got.status, name)
		require.Contains(t, got.msg, "before the agent started", name)
	}
	// A fresh request is fine.
	_, err := again.c.Processes(context.Background())
	require.NoError(t, err)
}

// An upload becomes visible (listed, HEAD 200, unpackable, startable) only
// once all of it arrived and its hash checked.
func TestUploadVisibleOnlyWhenChecked(t *testing.T) {
	n := startAgent(t)
	ctx := context.Background()
	path, digest, size := testBundle(t)
	content, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Greater(t, size, int64(2*auth.DefaultMaxBody), "the bundle streams")

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- n.c.PutArtifact(ctx, digest, pr, size, false) }()
	_, err = pw.Write(content[:size/2])
	require.NoError(t, err)

	// Half of it is on the node's disk, aside.
	require.Eventually(t, func() bool {
		des, _ := os.ReadDir(filepath.Join(n.dir, "artifacts"))
		for _, de := range des {
			if fi, err := de.Info(); err == nil && fi.Size() > 0 {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	has, err := n.c.HasArtifact(ctx, digest)
	require.NoError(t, err)
	require.False(t, has, "HEAD 404 while it arrives")
	arts, err := n.c.Artifacts(ctx)
	require.NoError(t, err)
	require.Empty(t, arts, "not listed while it arrives")
	requireStatus(t, n.c.PrepareRelease(ctx, digest), http.StatusNotFound)
	_, err = n.c.StartProcess(ctx, startReq("early", "v1", digest))
	requireStatus(t, err, http.StatusNotFound)

	_, err = pw.Write(content[size/2:])
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	require.NoError(t, <-done)
	has, err = n.c.HasArtifact(ctx, digest)
	require.NoError(t, err)
	require.True(t, has)
	require.NoError(t, n.c.PrepareRelease(ctx, digest))
}

// Uploads beyond the node's bounds are refused by the real client with
// clear, permanent errors: too large (413) and no room on the disk (507).
func TestUploadBounds(t *testing.T) {
	ctx := context.Background()
	_, digest, size := testBundle(t)
	path, _, _ := testBundle(t)
	put := func(t *testing.T, n node) error {
		f, err := os.Open(path)
		require.NoError(t, err)
		defer f.Close()
		return n.c.PutArtifact(ctx, digest, f, size, false)
	}
	t.Run("too large", func(t *testing.T) {
		n := startAgentWith(t, testsuite.NewSigner(t), func(o *agent.Options) { o.MaxArtifact = size - 1 })
		err := put(t, n)
		require.ErrorIs(t, err, artifact.ErrTooLarge)
		var ae *api.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, http.StatusRequestEntityTooLarge, ae.Status)
		require.True(t, ae.Permanent())
		require.ErrorContains(t, err, "too large for the node, not retried")
		require.ErrorContains(t, err, fmt.Sprintf("%d bytes is more than the %d bytes", size, size-1))
		arts, err := n.c.Artifacts(ctx)
		require.NoError(t, err)
		require.Empty(t, arts)
	})
	t.Run("too large, size unknown: stopped at the cap", func(t *testing.T) {
		n := startAgentWith(t, testsuite.NewSigner(t), func(o *agent.Options) { o.MaxArtifact = size / 2 })
		f, err := os.Open(path)
		require.NoError(t, err)
		defer f.Close()
		err = n.c.PutArtifact(ctx, digest, f, -1, false)
		require.ErrorIs(t, err, artifact.ErrTooLarge)
		require.ErrorContains(t, err, fmt.Sprintf("more than the %d bytes", size/2))
		des, err := os.ReadDir(filepath.Join(n.dir, "artifacts"))
		require.NoError(t, err)
		require.Empty(t, des)
	})
	t.Run("small, too large", func(t *testing.T) {
		n := startAgentWith(t, testsuite.NewSigner(t), func(o *agent.Options) { o.MaxArtifact = 3 })
		err := n.c.PutArtifact(ctx, hexSHA([]byte("four")), strings.NewReader("four"), 4, false)
		require.ErrorIs(t, err, artifact.ErrTooLarge)
	})
	t.Run("no room on the disk", func(t *testing.T) {
		n := startAgentWith(t, testsuite.NewSigner(t), func(o *agent.Options) { o.ArtifactReserve = 1 << 60 })
		err := put(t, n)
		require.ErrorIs(t, err, artifact.ErrNoSpace)
		var ae *api.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, http.StatusInsufficientStorage, ae.Status)
		require.True(t, ae.Permanent())
		require.ErrorContains(t, err, "no room on the node's disk, not retried")
		require.ErrorContains(t, err, filepath.Join(n.dir, "artifacts"))
		require.ErrorContains(t, err, "free")
		des, err := os.ReadDir(filepath.Join(n.dir, "artifacts"))
		require.NoError(t, err)
		require.Empty(t, des)
	})
}

// An agent without a node ID does not start.
func TestAgentNeedsNodeID(t *testing.T) {
	for _, id := range []string{"", "two words", strings.Repeat("x", 300)} {
		_, err := agent.New(agent.Options{Dir: t.TempDir(), Listen: "127.0.0.1:0", NodeID: id})
		require.ErrorContains(t, err, "--node-id", "node id %q", id)
	}
	_, err := agent.New(agent.Options{Dir: t.TempDir(), Listen: "127.0.0.1:0", NodeID: "n-1", MaxArtifact: -1})
	require.ErrorContains(t, err, "--max-artifact")
}

// The agent tells an app where to listen (HOST=127.0.0.1) and, once its gate
// passed, records on the instance that it listens beyond loopback when it
// ignored that.
func TestListenWarning(t *testing.T) {
	n := startAgent(t)
	ctx := context.Background()
	digest, _ := putBundle(t, n)
	cases := []struct {
		name, listenHost string // "": the fake app binds $HOST
		warn             string // in ListenWarning; "": none
	}{
		{name: "binds HOST", warn: ""},
		{name: "binds 127.0.0.1", listenHost: "127.0.0.1", warn: ""},
		{name: "binds every address", listenHost: "0.0.0.0", warn: "beyond loopback: it is reachable around the agent's proxy; bind to $HOST (127.0.0.1)"},
		{name: "binds every address (empty host)", listenHost: "-", warn: "beyond loopback"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var env []string
			switch tc.listenHost {
			case "":
			case "-":
				env = append(env, "DFLOW_FAKE_LISTEN_HOST=")
			default:
				env = append(env, "DFLOW_FAKE_LISTEN_HOST="+tc.listenHost)
			}
			id := fmt.Sprintf("l%d", i)
			info, err := n.c.StartProcess(ctx, startReq(id, "v1", digest, env...))
			require.NoError(t, err)
			if tc.warn == "" {
				require.Empty(t, info.ListenWarning)
			} else {
				require.Contains(t, info.ListenWarning, tc.warn)
				require.Contains(t, info.ListenWarning, fmt.Sprintf(":%d", info.Port), "names the address")
				t.Logf("warning: %s", info.ListenWarning)
			}
			l, err := n.c.Processes(ctx)
			require.NoError(t, err)
			require.Equal(t, info.ListenWarning, find(t, l, id).ListenWarning, "kept on the instance")
			_, err = n.c.StopProcess(ctx, id, api.StopRequest{Now: true})
			require.NoError(t, err)
		})
	}
}
