package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/agent/auth"
	"golang.org/x/crypto/ssh"
)

// Client calls one node agent, signing every request for that node's ID:
// an agent with another ID (another node, or another incarnation of the
// same one at the same address) refuses them.
//
// Quick calls (status, lists, switch, checksums) are bounded by
// shortTimeout on top of the caller's ctx. Calls that take as long as the
// app or the network takes (PutArtifact, StartProcess, StopProcess) have no
// fixed bound: the caller's ctx is their only limit.
type Client struct {
	base string
	http *http.Client
}

// shortTimeout bounds the calls that should answer at once.
const shortTimeout = 10 * time.Second

// smallBody is the largest artifact PutArtifact buffers, letting the signing
// transport hash it; the agent's auth layer checks bodies up to this size
// before its handler runs (auth.DefaultMaxBody). Larger bodies are streamed
// with their digest as the signed content hash, which the agent checks at
// EOF.
const smallBody = auth.DefaultMaxBody

// NewClient returns a client for the agent at baseURL (http://host:port)
// of the node nodeID (deploy.Node.ID, the agent's --node-id).
func NewClient(baseURL, nodeID string, signer ssh.Signer) *Client {
	return &Client{
		base: strings.TrimRight(baseURL, "/"),
		http: &http.Client{Transport: &auth.Transport{Signer: signer, Node: nodeID}},
	}
}

// Status asks the agent who it is.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, shortTimeout, http.MethodGet, "/v1/status", nil, &s)
	return s, err
}

// HasArtifact tells whether the agent's store holds digest.
func (c *Client) HasArtifact(ctx context.Context, digest string) (bool, error) {
	err := c.do(ctx, shortTimeout, http.MethodHead, "/v1/artifacts/"+url.PathEscape(digest), nil, nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}

// PutArtifact sends body, which must hash to digest, to the agent's store.
// Unless force, it first asks whether the agent has it and then sends
// nothing; force re-sends and makes the agent check it again. size is the
// body's length, or -1 if unknown; a wrong size fails the request. Content
// that does not hash to digest gives an error wrapping
// artifact.ErrDigestMismatch, and the agent keeps nothing. An artifact
// larger than the agent's --max-artifact gives an error wrapping
// artifact.ErrTooLarge (413), one its disk has no room for
// artifact.ErrNoSpace (507); both are permanent (*APIError.Permanent):
// sending it again cannot help.
func (c *Client) PutArtifact(ctx context.Context, digest string, body io.Reader, size int64, force bool) error {
	if !force {
		has, err := c.HasArtifact(ctx, digest)
		if err != nil {
			return err
		}
		if has {
			return nil
		}
	}
	path := "/v1/artifacts/" + url.PathEscape(digest)
	if force {
		path += "?force=1"
	}
	// Read up to smallBody+1 bytes: a small artifact goes as a buffered body
	// hashed by the transport, so a corrupt one reaches the store's check
	// (and is answered as a digest mismatch) instead of being refused as a
	// bad signature by the auth layer.
	head, err := io.ReadAll(io.LimitReader(body, smallBody+1))
	if err != nil {
		return fmt.Errorf("put artifact %s: read: %w", digest, err)
	}
	req, err := c.newRequest(ctx, http.MethodPut, path, nil)
	if err != nil {
		return err
	}
	if len(head) <= smallBody {
		req.Body = io.NopCloser(bytes.NewReader(head))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(head)), nil }
		req.ContentLength = int64(len(head))
	} else {
		req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(head), body))
		req.ContentLength = size
		if size < 0 {
			req.ContentLength = -1 // chunked
		}
		req.Header.Set(auth.HeaderContentSHA256, digest)
		// The agent may refuse it before reading it (too large, no room):
		// then it answers at once, and this sends nothing more. Without
		// it the agent's answer may be lost to a reset connection.
		req.Header.Set("Expect", "100-continue")
	}
	_, err = c.send(req, nil)
	var ae *APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusRequestEntityTooLarge:
			return fmt.Errorf("put artifact %s (%s) on node %s: too large for the node, not retried: %w", digest, sizeText(size), c.node(), err)
		case http.StatusInsufficientStorage:
			return fmt.Errorf("put artifact %s (%s) on node %s: no room on the node's disk, not retried: %w", digest, sizeText(size), c.node(), err)
		}
	}
	return err
}

// node is the ID of the node the client signs for.
func (c *Client) node() string {
	if t, ok := c.http.Transport.(*auth.Transport); ok {
		return t.Node
	}
	return "?"
}

func sizeText(size int64) string {
	if size < 0 {
		return "size unknown"
	}
	return strconv.FormatInt(size, 10) + " bytes"
}

// Artifacts lists the agent's store.
func (c *Client) Artifacts(ctx context.Context) ([]ArtifactInfo, error) {
	var out []ArtifactInfo
	err := c.do(ctx, shortTimeout, http.MethodGet, "/v1/artifacts", nil, &out)
	return out, err
}

// RemoveArtifact deletes digest and its unpacked release from the node. It
// fails (409) while a process that is not stopped runs from it; removing an
// absent artifact is no error.
func (c *Client) RemoveArtifact(ctx context.Context, digest string) error {
	return c.do(ctx, shortTimeout, http.MethodDelete, "/v1/artifacts/"+url.PathEscape(digest), nil, nil)
}

// PrepareRelease unpacks the bundle digest on the node (it must hold it),
// so that starting it later only execs it. A bundle that cannot be
// unpacked safely is a 422.
func (c *Client) PrepareRelease(ctx context.Context, digest string) error {
	return c.do(ctx, 0, http.MethodPost, "/v1/releases/"+url.PathEscape(digest), nil, nil)
}

// StartProcess starts r and waits until it is ready (or was already). When
// the new process does not pass its readiness gate, the error is a
// *GateError (errors.As) and the serving version was not touched.
func (c *Client) StartProcess(ctx context.Context, r StartRequest) (ProcessInfo, error) {
	var info ProcessInfo
	err := c.do(ctx, 0, http.MethodPost, "/v1/processes", r, &info)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity && ae.gate != nil {
		return info, ae.gate
	}
	return info, err
}

// Switch routes the node's public port to r.ID.
func (c *Client) Switch(ctx context.Context, r SwitchRequest) (SwitchResult, error) {
	var res SwitchResult
	err := c.do(ctx, 0, http.MethodPost, "/v1/switch", r, &res)
	return res, err
}

// StopProcess stops instance id (draining it first unless r.Now) and waits
// until it is gone.
func (c *Client) StopProcess(ctx context.Context, id string, r StopRequest) (ProcessInfo, error) {
	var info ProcessInfo
	err := c.do(ctx, 0, http.MethodPost, "/v1/processes/"+url.PathEscape(id)+"/stop", r, &info)
	return info, err
}

// Processes lists the processes the agent runs and ran.
func (c *Client) Processes(ctx context.Context) (ProcessList, error) {
	var l ProcessList
	err := c.do(ctx, shortTimeout, http.MethodGet, "/v1/processes", nil, &l)
	return l, err
}

// Log returns the last lines of instance id's log.
func (c *Client) Log(ctx context.Context, id string, lines int) (string, error) {
	path := "/v1/processes/" + url.PathEscape(id) + "/log"
	if lines > 0 {
		path += "?lines=" + strconv.Itoa(lines)
	}
	var text string
	err := c.do(ctx, shortTimeout, http.MethodGet, path, nil, &text)
	return text, err
}

// LogOptions say which part of a log StreamLog and StreamAgentLog send.
type LogOptions struct {
	// Lines is how many of the last lines: 0 means the agent's default
	// (100, or all with Since or Follow), AllLines all of them (within what
	// the node keeps: the current and one rotated part), NoLines none (with
	// Follow: only what is written from now on).
	Lines int
	// Since, unless zero, keeps only the lines written after it (on the
	// node's clock, to about a second).
	Since time.Time
	// Follow goes on sending what is written: for an instance until it is
	// stopped, failed or exited, for the agent's log until ctx ends.
	Follow bool
}

// Special values of LogOptions.Lines.
const (
	AllLines = -1
	NoLines  = -2
)

func (o LogOptions) query() string {
	q := url.Values{}
	switch {
	case o.Lines == NoLines:
		q.Set("lines", "0")
	case o.Lines < 0:
		q.Set("lines", "all")
	case o.Lines > 0:
		q.Set("lines", strconv.Itoa(o.Lines))
	}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339Nano))
	}
	if o.Follow {
		q.Set("follow", "1")
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// StreamLog streams instance id's log (its stdout and stderr) as o says.
// The caller reads it until EOF (with Follow: the instance ended) or ends
// ctx, and closes it. An unknown id is an *APIError with status 404.
func (c *Client) StreamLog(ctx context.Context, id string, o LogOptions) (io.ReadCloser, error) {
	return c.stream(ctx, "/v1/processes/"+url.PathEscape(id)+"/log"+o.query())
}

// StreamAgentLog streams the agent's own log as o says; 404 when the agent
// does not log to a file.
func (c *Client) StreamAgentLog(ctx context.Context, o LogOptions) (io.ReadCloser, error) {
	return c.stream(ctx, "/v1/agent/log"+o.query())
}

// stream GETs path and hands over the body of a 2xx answer; ctx bounds
// the whole stream, shortTimeout only the wait for the answer's headers.
func (c *Client) stream(ctx context.Context, path string) (io.ReadCloser, error) {
	sctx, cancel := context.WithCancel(ctx)
	req, err := c.newRequest(sctx, http.MethodGet, path, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	where := req.Method + " " + c.base + req.URL.RequestURI()
	timer := time.AfterFunc(shortTimeout, cancel)
	resp, err := c.http.Do(req)
	if !timer.Stop() && err != nil && ctx.Err() == nil {
		err = fmt.Errorf("no answer within %s: %w", shortTimeout, err)
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("agent %s: %w", where, err)
	}
	if resp.StatusCode/100 != 2 {
		defer cancel()
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, c.apiError(req, resp.StatusCode, body)
	}
	return &cancelBody{ReadCloser: resp.Body, cancel: cancel}, nil
}

// cancelBody ends its request's context when closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// Checksum is the sha256 (hex) of file path (a slash path) in the unpacked
// release digest, as it is on the node's disk now.
func (c *Client) Checksum(ctx context.Context, digest, path string) (string, error) {
	var out struct {
		SHA256 string `json:"sha256"`
	}
	q := url.Values{"digest": {digest}, "path": {path}}
	err := c.do(ctx, shortTimeout, http.MethodGet, "/v1/checksum?"+q.Encode(), nil, &out)
	return out.SHA256, err
}

// do sends in (JSON, if not nil) and decodes the answer into out: JSON, or
// the raw text when out is a *string. timeout > 0 bounds the call on top of
// ctx.
func (c *Client) do(ctx context.Context, timeout time.Duration, method, path string, in, out any) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("agent %s %s: encode request: %w", method, c.base+path, err)
		}
	}
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	_, err = c.send(req, out)
	return err
}

func (c *Client) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, fmt.Errorf("agent %s %s: %w", method, c.base+path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// send does req and decodes a 2xx answer into out; anything else becomes an
// *APIError.
func (c *Client) send(req *http.Request, out any) (int, error) {
	where := req.Method + " " + c.base + req.URL.RequestURI()
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("agent %s: %w", where, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("agent %s: read answer: %w", where, err)
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, c.apiError(req, resp.StatusCode, body)
	}
	switch out := out.(type) {
	case nil:
	case *string:
		*out = string(body)
	default:
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, fmt.Errorf("agent %s: decode answer: %w", where, err)
		}
	}
	return resp.StatusCode, nil
}

// apiError is the *APIError of an answer with status and body.
func (c *Client) apiError(req *http.Request, status int, body []byte) *APIError {
	ae := &APIError{Method: req.Method, URL: c.base + req.URL.RequestURI(), Status: status}
	var e ErrorBody
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		ae.Msg, ae.Code = e.Error, e.Code
		if e.GateError != nil && e.GateError.Reason != "" {
			ae.gate = e.GateError
		}
	} else {
		ae.Msg = strings.TrimSpace(string(body))
	}
	if ae.Msg == "" {
		ae.Msg = http.StatusText(status)
	}
	return ae
}
