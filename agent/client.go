package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/agent/auth"
	"golang.org/x/crypto/ssh"
)

// Client calls one node agent, signing every request.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client for the agent at baseURL (http://host:port).
func NewClient(baseURL string, signer ssh.Signer) *Client {
	return &Client{
		base: strings.TrimRight(baseURL, "/"),
		http: &http.Client{Transport: &auth.Transport{Signer: signer}, Timeout: 10 * time.Second},
	}
}

// Status asks the agent who it is.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, "/v1/status", &s)
	return s, err
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return fmt.Errorf("agent %s: %w", c.base, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("agent %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("agent %s %s: read answer: %w", method, c.base+path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		return fmt.Errorf("agent %s %s: %s: %s", method, c.base+path, resp.Status, e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("agent %s %s: decode answer: %w", method, c.base+path, err)
		}
	}
	return nil
}
