package activities

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/distributive-flow/dflow/deploy"
)

// VerifyNode answers verify for node n: (health, threshold). The built-in
// probe sends cfg.Verify.Probes requests to the node's public port (GET
// app.health in http mode, a TCP connect in tcp mode); health is the
// percentage that succeeded within cfg.Verify.Timeout and the threshold is
// cfg.Verify.Threshold. A node that cannot be probed at all is a verdict
// (health 0), not an error: verify reports, it does not fail.
func (a *Activities) VerifyNode(ctx context.Context, cfg deploy.Config, n deploy.Node) (deploy.Verdict, error) {
	return ProbeNode(ctx, cfg, n), nil
}

// ProbeNode is the built-in probe behind VerifyNode.
func ProbeNode(ctx context.Context, cfg deploy.Config, n deploy.Node) deploy.Verdict {
	v := deploy.Verdict{Index: n.Index, Threshold: float64(cfg.Verify.Threshold), Source: "probe", At: time.Now().UTC()}
	addr := net.JoinHostPort(n.Address, strconv.Itoa(cfg.App.Port))
	probes := max(cfg.Verify.Probes, 1)
	timeout := cfg.Verify.Timeout.D()
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	ok := 0
	var last error
	for i := 0; i < probes; i++ {
		if err := probeOnce(ctx, cfg, client, addr, timeout); err != nil {
			last = err
		} else {
			ok++
		}
	}
	v.Health = 100 * float64(ok) / float64(probes)
	if last != nil {
		v.Detail = fmt.Sprintf("%d of %d probes failed; last: %v", probes-ok, probes, last)
	}
	return v
}

func probeOnce(ctx context.Context, cfg deploy.Config, c *http.Client, addr string, timeout time.Duration) error {
	if cfg.App.Mode == deploy.ModeTCP {
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+cfg.App.Health, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s answered %s", req.URL, resp.Status)
	}
	return nil
}
