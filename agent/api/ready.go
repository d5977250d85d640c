package api

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"
)

// AnswersAs checks that the agent at baseURL answers an authenticated status
// call as the node with ID id (not another incarnation at the same address,
// which refuses a request signed for id).
func AnswersAs(ctx context.Context, baseURL string, signer ssh.Signer, id string) error {
	st, err := NewClient(baseURL, id, signer).Status(ctx)
	if err != nil {
		return err
	}
	if st.NodeID != id {
		return fmt.Errorf("answered as node %q, want %q", st.NodeID, id)
	}
	return nil
}

// AgentLog names where a VM backend's agent logs and reads its last lines,
// for WaitReady's errors.
type AgentLog struct {
	Where string             // "/path/agent.log", "docker logs NAME", ...
	Tail  func(n int) string // its last n lines
}

// WaitReady returns once the agent at baseURL answers as node id (see
// AnswersAs), polling every 25 ms. It fails when timeout passes, or when
// exited (nil: not watched) says the agent's process ended; the error ends
// with the last lines of the agent's log.
func WaitReady(ctx context.Context, baseURL string, signer ssh.Signer, id string, timeout time.Duration, exited <-chan error, log AgentLog) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		last = AnswersAs(ctx, baseURL, signer, id)
		if last == nil {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("agent exited (%v); last lines of %s:\n%s", err, log.Where, log.Tail(10))
		case <-ctx.Done():
			return fmt.Errorf("agent at %s not ready after %s: %w; last lines of %s:\n%s", baseURL, timeout, last, log.Where, log.Tail(10))
		case <-time.After(25 * time.Millisecond):
		}
	}
}
