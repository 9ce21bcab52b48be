package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/docker/docker/errdefs"
)

func TestTransient(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{errors.New("Error response from daemon: removal of container abc is already in progress"), true},
		{errdefs.Unavailable(errors.New("daemon shutting down")), true},
		{errors.New("write unix ->/var/run/docker.sock: write: broken pipe"), true},
		{errdefs.NotFound(errors.New("No such container: www")), false},
		{errdefs.Conflict(errors.New("name www is already in use")), false},
		{errdefs.InvalidParameter(errors.New("invalid reference format")), false},
		{fmt.Errorf("call: %w", context.DeadlineExceeded), false},
		{context.Canceled, false},
		{errors.New("manifest unknown"), false},
		{fmt.Errorf("error during connect: %w", io.EOF), true},
		{fmt.Errorf("dial: %w", ErrUnreachable), false},
	}
	for _, tc := range tests {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestRetryStopsOnPermanentAndBounds(t *testing.T) {
	calls := 0
	err := retry(context.Background(), func() error { calls++; return errdefs.NotFound(errors.New("gone")) })
	if calls != 1 || !errdefs.IsNotFound(err) {
		t.Errorf("permanent error: %d calls, err %v; want 1 call", calls, err)
	}
	calls = 0
	err = retry(context.Background(), func() error {
		calls++
		if calls < 3 {
			return fmt.Errorf("x: %w", syscall.ECONNRESET)
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("transient then ok: %d calls, err %v; want success on the 3rd", calls, err)
	}
	calls = 0
	err = retry(context.Background(), func() error { calls++; return fmt.Errorf("x: %w", syscall.ECONNRESET) })
	if err == nil || calls != retryAttempts {
		t.Errorf("always transient: %d calls, err %v; want %d calls and the error", calls, err, retryAttempts)
	}
}
