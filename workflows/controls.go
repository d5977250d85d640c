package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Pause, resume and abort: the updates a running deploy accepts, and what
// the rollout does with them (it looks at them between node turns or
// batches; a node in its turn always finishes it).

// Updates a running deploy accepts (dflow deploy pause|resume|abort).
const (
	UpdatePause  = "pause"
	UpdateResume = "resume"
	UpdateAbort  = "abort"
)

// ErrAborted is the error type of a deploy stopped by `dflow deploy abort`.
const ErrAborted = "Aborted"

// control is the state the pause/resume/abort updates (and retry and
// skip-node, stuck.go) change.
type control struct {
	paused, aborted bool
	t               *tracker
	// abortedBy is who aborted; stuckAbort: the abort came while a node
	// step was stuck (or from deploy.stuck_action), so what switched goes
	// back (Deploy compensates, with or without --auto-rollout).
	abortedBy  string
	stuckAbort bool
	// stuck are the node steps waiting for a decision, in the order they
	// got stuck.
	stuck []*stuckWait
}

// register installs the update handlers (with validators, so that a
// pause of a paused deploy is refused before it reaches the history).
func (c *control) register(ctx workflow.Context) error {
	done := func() error {
		if c.aborted {
			return errors.New("the deploy is being aborted already")
		}
		return nil
	}
	handlers := []struct {
		name     string
		validate func() error
		apply    func(who string)
		desc     string
	}{
		{UpdatePause, func() error {
			if err := done(); err != nil {
				return err
			}
			if c.paused {
				return errors.New("the deploy is paused already")
			}
			return nil
		}, func(string) { c.paused = true }, "Pause the deploy before its next node turn or batch. Argument: who asks (a JSON string, may be left out)."},
		{UpdateResume, func() error {
			if err := done(); err != nil {
				return err
			}
			if !c.paused {
				return errors.New("the deploy is not paused")
			}
			return nil
		}, func(string) { c.paused = false }, "Resume a paused deploy. Argument: who asks (a JSON string, may be left out)."},
		{UpdateAbort, done, func(who string) {
			c.aborted, c.abortedBy = true, who
			c.stuckAbort = c.stuckAbort || len(c.stuck) > 0
		}, "Abort the deploy before its next node turn or batch; a stuck deploy stops at once and what it switched goes back. Argument: who asks (a JSON string, may be left out)."},
	}
	for _, h := range handlers {
		err := workflow.SetUpdateHandlerWithOptions(ctx, h.name, func(ctx workflow.Context, who string) (string, error) {
			who = someone(who)
			h.apply(who)
			c.t.p.Paused = c.paused
			c.t.event(ctx, -1, "%s by %s", h.name, who)
			return h.name + "d", nil
		}, workflow.UpdateHandlerOptions{Validator: func(who string) error { return h.validate() }, Description: h.desc})
		if err != nil {
			return fmt.Errorf("register update %s: %w", h.name, err)
		}
	}
	return c.registerStuck(ctx)
}

// hold blocks while the deploy is paused and returns when it is resumed
// or aborted (at once when it is neither).
func (c *control) hold(ctx workflow.Context) error {
	return workflow.Await(ctx, func() bool { return !c.paused || c.aborted })
}

// abortedError is the error of a rollout stopped by an abort; what says
// where it stopped.
func abortedError(what string) error {
	return temporal.NewNonRetryableApplicationError("aborted "+what, ErrAborted, nil)
}
