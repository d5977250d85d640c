package agent

// Alive tells whether the process may still run: starting, ready, serving
// or draining (not stopped, failed or exited).
func (p ProcessInfo) Alive() bool {
	switch p.State {
	case StateStarting, StateReady, StateServing, StateDraining:
		return true
	}
	return false
}
