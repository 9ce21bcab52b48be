package fleet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/gantry-dev/gantry/lock"
)

// Close releases every lock the session holds, last taken first, and
// returns every failure; Done prints them as warnings.
func TestSessionCloseCollectsReleaseErrors(t *testing.T) {
	var order []string
	release := func(name string, err error) func() error {
		return func() error { order = append(order, name); return err }
	}
	var out bytes.Buffer
	s := &Session{Out: &out, releases: []func() error{
		release("api", errors.New("could not release deploy lock prod--api: gone")),
		release("www", nil),
		release("jobs", errors.New("could not release deploy lock prod--jobs: timeout")),
	}}
	s.Done()
	if want := []string{"jobs", "www", "api"}; !reflect.DeepEqual(order, want) {
		t.Errorf("released %v, want %v", order, want)
	}
	want := "warning: could not release deploy lock prod--jobs: timeout\nwarning: could not release deploy lock prod--api: gone\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nothing left to close", err)
	}
}

// A lock released by its session's Close is free for the next deployer.
func TestSessionHoldLocksReleasedByClose(t *testing.T) {
	pl, _ := lockers(t)
	ctx := context.Background()
	_, release, err := holdServiceLocks(ctx, pl, "prod", []string{"api"}, lock.Request{Target: "decommission host1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{Out: io.Discard, releases: []func() error{release}}
	if got := holder(t, pl, "prod--api"); got != "decommission host1" {
		t.Fatalf("held by %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := holder(t, pl, "prod--api"); got != "free" {
		t.Errorf("after Close the lock is held by %q, want free", got)
	}
}
