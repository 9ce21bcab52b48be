package hurry

import (
	"context"
	"testing"
)

func TestWaitEndsOnHurryEvenWithoutCancel(t *testing.T) {
	ch := make(chan struct{})
	parent, cancel := context.WithCancel(With(context.Background(), ch))
	cancel() // the first interrupt
	cleanup := context.WithoutCancel(parent)
	w, done := Wait(cleanup)
	defer done()
	if w.Err() != nil || Now(cleanup) {
		t.Fatal("a wait on a cleanup context ended before the second interrupt")
	}
	close(ch)
	<-w.Done()
	if !Now(cleanup) {
		t.Fatal("Now is false after the second interrupt")
	}
}

func TestNoHurryNeverEnds(t *testing.T) {
	w, done := Wait(context.Background())
	defer done()
	if Now(w) || w.Err() != nil {
		t.Fatal("a context without hurry is in a hurry")
	}
}
