package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
)

// Retry policy for transient Docker errors: a bounded number of attempts
// with growing pauses. Permanent errors (not found, conflict, bad request)
// are returned at once.
const (
	retryAttempts = 3
	retryFirst    = 200 * time.Millisecond
)

// retry runs fn until it succeeds, fails permanently, or the attempts run out.
func retry(ctx context.Context, fn func() error) error {
	return retryReobserving(ctx, fn, nil)
}

// retryReobserving is retry for a call that is not idempotent (create,
// rename). After a transient failure the request may have reached the
// daemon before the connection broke, so took looks at the host (through a
// redialled connection if need be) to tell whether the call took effect;
// only if it did not is the call made again. A nil took: the call is
// idempotent, made again as it is.
func retryReobserving(ctx context.Context, fn func() error, took func() (bool, error)) error {
	pause := retryFirst
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !Transient(err) || attempt == retryAttempts || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause *= 4
		if took == nil {
			continue
		}
		done, oerr := took()
		if oerr != nil {
			return fmt.Errorf("%w; then looking whether it took effect failed: %w", err, oerr)
		}
		if done {
			return nil
		}
	}
}

// transientMessages are daemon answers known to go away on a retry: races
// inside dockerd and connections cut under load.
var transientMessages = []string{
	"connection reset by peer",
	"broken pipe",
	"use of closed network connection",
	"is already in progress",
	"ssh: rejected: connect failed",
	"ssh: unexpected packet",
	"tls handshake timeout",
	"i/o timeout",
	"server misbehaving",
	"toomanyrequests",
	"502 bad gateway",
	"503 service unavailable",
}

// Transient reports whether a Docker or transport error may succeed when
// tried again. Deadlines and cancellations are not transient: they are the
// caller's decision.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnreachable) {
		return false
	}
	if errdefs.IsNotFound(err) || errdefs.IsConflict(err) || errdefs.IsInvalidParameter(err) ||
		errdefs.IsUnauthorized(err) || errdefs.IsForbidden(err) || errdefs.IsNotModified(err) {
		return false
	}
	if errdefs.IsUnavailable(err) || client.IsErrConnectionFailed(err) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, m := range transientMessages {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}
