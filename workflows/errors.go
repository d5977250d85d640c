package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
)

// How a workflow's errors read: the step that failed first, then the
// activity's own message, with its application error type kept for the
// CLI's exit code.

// failed puts context before an activity's error and keeps what the user
// needs: the application error's own message (not Temporal's wrapping of
// it, which repeats it) and its type, for the CLI's exit code.
func failed(context string, err error) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return temporal.NewApplicationErrorWithOptions(context+": "+app.Message(), app.Type(), temporal.ApplicationErrorOptions{NonRetryable: true})
	}
	return fmt.Errorf("%s: %w", context, err)
}

// annotate adds more to an error's message, keeping its type.
func annotate(err error, more string) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return temporal.NewApplicationErrorWithOptions(app.Message()+more, app.Type(), temporal.ApplicationErrorOptions{NonRetryable: true})
	}
	return fmt.Errorf("%w%s", err, more)
}
