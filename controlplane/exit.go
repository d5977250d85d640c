package controlplane

import "errors"

// ExitError asks for a specific exit status. One whose Err says nothing
// ("") stands for a failure already told (a report, a refusal).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the exit status err asks for (docs/operations.md, "Exit
// codes"): an ExitError's own, 2 for bad input, 4 when an operator (or
// deploy.stuck_action) aborted the operation, 75 when the cluster is busy,
// 0 when the operator stopped following (Ctrl-C: the operation goes on),
// else 1.
func ExitCode(err error) int {
	var ee *ExitError
	var busy *BusyError
	var running *AlreadyRunningError
	var input *InputError
	var op *OpError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &input), errors.As(err, &op) && op.BadInput():
		return 2
	case errors.As(err, &op) && op.Aborted():
		return 4
	case errors.As(err, &busy), errors.As(err, &running):
		return 75
	case errors.Is(err, ErrDetached):
		return 0
	}
	return 1
}
