package activities

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/filelock"
	"go.temporal.io/sdk/temporal"
)

// VerifyNode answers verify for node n, (health, threshold), and records the
// verdict in the store. With verify.program it runs that program (a Haskell
// source is compiled once and cached by its hash) with DFLOW_NODE_INDEX,
// DFLOW_NODE_ADDRESS, DFLOW_APP_URL and DFLOW_VERSION set; it prints
// "health threshold". Without one, the built-in probe sends verify.probes
// requests to the node's public port; health is the percentage that
// succeeded within verify.timeout and the threshold is verify.threshold.
// A node that cannot be probed is a verdict (health 0), not an error; a
// verify program that is missing or does not compile is an error.
func (a *Activities) VerifyNode(ctx context.Context, ref deploy.ConfigRef, n deploy.Node) (deploy.Verdict, error) {
	cfg, b, err := a.resolve(ctx, ref)
	if err != nil {
		return deploy.Verdict{}, err
	}
	return Verify(ctx, cfg, b, n)
}

// Verify asks verify about node n with cfg's backends and records the
// verdict (the VerifyNode activity; the CLI's `verify` without a workflow).
func Verify(ctx context.Context, cfg deploy.Config, b *Backends, n deploy.Node) (deploy.Verdict, error) {
	var v deploy.Verdict
	var err error
	if cfg.Verify.Program == "" {
		v = ProbeNode(ctx, cfg, n)
	} else {
		v, err = runVerify(ctx, cfg, n, b)
		if err != nil {
			return v, err
		}
	}
	if err := update(ctx, b.Store, func(s *deploy.State) { s.AddVerdict(v) }); err != nil {
		return v, fmt.Errorf("verify node %d: record it: %w", n.Index, err)
	}
	return v, nil
}

// ProbeNode is the built-in probe.
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

// verifyTimeout bounds one run of a verify program.
const verifyTimeout = time.Minute

// runVerify runs the verify program for node n.
func runVerify(ctx context.Context, cfg deploy.Config, n deploy.Node, b *Backends) (deploy.Verdict, error) {
	v := deploy.Verdict{Index: n.Index, Source: cfg.Verify.Program, At: time.Now().UTC()}
	exe, err := VerifyProgram(ctx, cfg)
	if err != nil {
		return v, temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, nil)
	}
	version := ""
	if l, err := api.NewClient(n.AgentURL, n.ID, b.Signer).Processes(ctx); err == nil {
		for _, p := range l.Processes {
			if p.ID == l.Serving {
				version = p.Version
			}
		}
	}
	rctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, exe)
	cmd.Dir = cfg.Dir
	cmd.Env = append(os.Environ(),
		"DFLOW_NODE_INDEX="+strconv.Itoa(n.Index),
		"DFLOW_NODE_ADDRESS="+n.Address,
		"DFLOW_APP_URL=http://"+net.JoinHostPort(n.Address, strconv.Itoa(cfg.App.Port))+"/",
		"DFLOW_VERSION="+version,
	)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	health, threshold, perr := ParseVerdict(out.String())
	switch {
	case runErr != nil:
		v.Detail = fmt.Sprintf("%s: %v: %s", cfg.Verify.Program, runErr, lastLines(errb.String(), 5))
	case perr != nil:
		v.Detail = fmt.Sprintf("%s: %v", cfg.Verify.Program, perr)
	default:
		v.Health, v.Threshold = health, threshold
		v.Detail = lastLines(errb.String(), 3)
		return v, nil
	}
	// A program that fails or prints nonsense says the node is not healthy.
	v.Health, v.Threshold = 0, 1
	return v, nil
}

// ParseVerdict reads a verify program's output: its last non-empty line
// holds two numbers, "health threshold".
func ParseVerdict(out string) (health, threshold float64, err error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := strings.Fields(lines[len(lines)-1])
	if len(last) != 2 {
		return 0, 0, fmt.Errorf("printed %q: want two numbers, \"health threshold\"", strings.TrimSpace(out))
	}
	if health, err = strconv.ParseFloat(last[0], 64); err == nil {
		threshold, err = strconv.ParseFloat(last[1], 64)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("printed %q: want two numbers, \"health threshold\"", lines[len(lines)-1])
	}
	return health, threshold, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

var compileMu sync.Mutex

// VerifyProgram returns the executable verify.program names: a Haskell
// source (.hs, .lhs) compiled with ghc once and cached by the source's hash
// in .dflow/verify/, or the program itself.
func VerifyProgram(ctx context.Context, cfg deploy.Config) (string, error) {
	src := cfg.Verify.Program
	if !filepath.IsAbs(src) {
		src = filepath.Join(cfg.Dir, src)
	}
	st, err := os.Stat(src)
	if err != nil {
		return "", fmt.Errorf("%s: verify.program %s: %w", cfg.Where("verify.program"), cfg.Verify.Program, err)
	}
	ext := filepath.Ext(src)
	if ext != ".hs" && ext != ".lhs" {
		if st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s: verify.program %s is not executable (chmod +x it, or give a Haskell source)", cfg.Where("verify.program"), cfg.Verify.Program)
		}
		return src, nil
	}
	code, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("verify.program: %w", err)
	}
	sum := sha256.Sum256(code)
	dir := filepath.Join(cfg.StateDir(), "verify", hex.EncodeToString(sum[:8]))
	exe := filepath.Join(dir, "verify")
	compileMu.Lock()
	defer compileMu.Unlock()
	if _, err := os.Stat(exe); err == nil {
		return exe, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("verify.program: %w", err)
	}
	lock, err := filelock.Lock(filepath.Join(dir, "lock"))
	if err != nil {
		return "", fmt.Errorf("verify.program: %w", err)
	}
	defer lock.Close()
	if _, err := os.Stat(exe); err == nil {
		return exe, nil // another process compiled it meanwhile
	}
	cmd := exec.CommandContext(ctx, "ghc", "-O", "-outputdir", filepath.Join(dir, "build"), "-o", exe+".tmp", src)
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			return "", fmt.Errorf("verify.program %s is Haskell but ghc is not on PATH: apt-get install ghc", cfg.Verify.Program)
		}
		return "", fmt.Errorf("verify.program %s does not compile: %v\n%s", cfg.Verify.Program, err, lastLines(string(out), 20))
	}
	if err := os.Rename(exe+".tmp", exe); err != nil {
		return "", fmt.Errorf("verify.program: %w", err)
	}
	return exe, nil
}
