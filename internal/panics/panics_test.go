package panics

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func explode() error {
	var m map[string]int
	m["x"]++ // assignment to entry in nil map
	return nil
}

func TestCatchTurnsAPanicIntoAnError(t *testing.T) {
	err := Catch(explode)
	if !Is(err) {
		t.Fatalf("Catch returned %v, want a recovered panic", err)
	}
	for _, w := range []string{"panic: assignment to entry in nil map", "panics.explode (panics/panics_test.go:"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "runtime.") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line of the panicking code's frames: %q", err)
	}
}

func TestCatchKeepsAnErrorPanicValue(t *testing.T) {
	err := Catch(func() error { panic(io.ErrUnexpectedEOF) })
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("errors.Is(%v, io.ErrUnexpectedEOF) = false", err)
	}
}

func TestCatchPassesErrorsAndSuccessThrough(t *testing.T) {
	want := errors.New("plain failure")
	if err := Catch(func() error { return want }); err != want {
		t.Errorf("Catch = %v, want %v", err, want)
	}
	if err := Catch(func() error { return nil }); err != nil {
		t.Errorf("Catch = %v, want nil", err)
	}
	if Is(want) {
		t.Errorf("Is(plain error) = true")
	}
}

func TestRecoverEndsAGoroutineWithAnError(t *testing.T) {
	done := make(chan error)
	go func() {
		var err error
		defer func() { done <- err }()
		defer Recover(func(p error) { err = p })
		explode()
	}()
	err := <-done
	if !Is(err) || !strings.Contains(err.Error(), "panics.explode (panics/panics_test.go:") {
		t.Errorf("recorded %v, want the panic with the panicking frame", err)
	}
}
