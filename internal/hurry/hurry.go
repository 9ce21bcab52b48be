// Package hurry carries a run's second interrupt through its contexts: the
// first interrupt stops gantry from starting new steps; the second cuts
// its waits short (for requests in flight to drain, for more health-check
// passes) so the host in progress goes back into service at once, without
// abandoning it mid-swap.
//
// The signal travels as a context value, so it survives
// context.WithoutCancel: the work that puts a host back runs on such a
// context, and it is exactly that work's waits that a second interrupt
// shortens.
package hurry

import "context"

type key struct{}

// With returns ctx carrying done: closed when waits must be cut short.
func With(ctx context.Context, done <-chan struct{}) context.Context {
	return context.WithValue(ctx, key{}, done)
}

// Done returns the channel closed when the run is in a hurry, or nil
// (never ready) when ctx carries none.
func Done(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(key{}).(<-chan struct{})
	return ch
}

// Now reports whether the run is in a hurry.
func Now(ctx context.Context) bool {
	select {
	case <-Done(ctx):
		return true
	default:
		return false
	}
}

// Wait returns a context for a wait that a hurry cuts short: it ends with
// ctx, or when the run is in a hurry.
func Wait(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancel(ctx)
	done := Done(ctx)
	if done == nil {
		return wctx, cancel
	}
	stop := make(chan struct{})
	go func() {
		select {
		case <-done:
			cancel()
		case <-stop:
		case <-wctx.Done():
		}
	}()
	return wctx, func() { close(stop); cancel() }
}
