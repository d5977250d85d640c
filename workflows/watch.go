package workflows

import (
	"time"

	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/workflow"
)

// The watch loop that `repair --watch` (RepairWatch), `chaos-monkey
// --rampage` (ChaosRampage) and `verify --watch` (VerifyWatch) share: a
// round every interval (a durable timer) until cancelled or the last
// round, continuing as new when the server suggests it or every
// roundsPerRun rounds so that a run's history stays small. A round that
// acts under the cluster lock stands aside while another operation holds
// it (lockHeld): the next round comes soon enough.

// roundsPerRun bounds a watch loop's rounds per run, whatever the server
// suggests, so its history stays small.
const roundsPerRun = 200

// watchLoop is how one run of a watch loop goes.
type watchLoop struct {
	interval time.Duration
	// rounds counts the rounds across continue-as-new: it points at the
	// request's count, which the next run carries on.
	rounds *int
	// maxRounds ends the loop after that many rounds (0: never).
	maxRounds int
	// next returns the continue-as-new error that starts the next run
	// (with the request, its count and what else it carries over).
	next func() error
}

// watch runs round(n) every l.interval, n counting the rounds across runs:
// the round, then the timer. It returns nil after l.maxRounds rounds, the
// timer's error when the workflow is cancelled, or l.next's continue-as-new.
func watch(ctx workflow.Context, l watchLoop, round func(n int)) error {
	for run := 0; ; run++ {
		*l.rounds++
		round(*l.rounds)
		if l.maxRounds > 0 && *l.rounds >= l.maxRounds {
			return nil
		}
		if err := workflow.Sleep(ctx, l.interval); err != nil {
			return err
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() || run+1 >= roundsPerRun {
			return l.next()
		}
	}
}

// carried is the progress a watch loop carries over a continue-as-new:
// its last 50 events.
func carried(t *tracker) *deploy.Progress {
	p := t.p
	p.Events = lastEvents(p.Events, 50)
	return &p
}

func lastEvents(es []deploy.Event, n int) []deploy.Event {
	if len(es) > n {
		es = es[len(es)-n:]
	}
	return append([]deploy.Event(nil), es...)
}
