package controlplane

import (
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{fmt.Errorf("set: %w", &InputError{Err: errors.New("bad")}), 2},
		{&ExitError{Code: 3, Err: errors.New("")}, 3},
		{&BusyError{}, 75},
		{&AlreadyRunningError{}, 75},
		{fmt.Errorf("follow: %w", ErrDetached), 0},
	} {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}
