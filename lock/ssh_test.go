package lock

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/shell"
)

// TestDirStoreWithRealShell runs DirStore's scripts with the local sh in a
// temporary directory, as sshd would run them on the lock's machine.
func TestDirStoreWithRealShell(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "it's locks")
	st := DirStore{Runner: &shell.LocalRunner{}, Dir: dir}
	ctx := context.Background()

	if _, ok, err := st.Read(ctx, "lab--www"); ok || err != nil {
		t.Fatalf("fresh store: held=%v err=%v", ok, err)
	}
	// Many deployers at once: exactly one gets the lock.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []*Lock
	var refused int
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := &Locker{Store: st, TTL: time.Hour}
			lk, err := l.Acquire(ctx, Request{Name: "lab--www", Target: "www@abc1234"})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				winners = append(winners, lk)
			} else if errors.Is(err, ErrHeld) {
				refused++
			} else {
				t.Errorf("acquire: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(winners) != 1 || refused != 7 {
		t.Fatalf("%d winners and %d refused, want 1 and 7", len(winners), refused)
	}
	h, ok, err := st.Read(ctx, "lab--www")
	if err != nil || !ok || h.ID != winners[0].Info.ID || h.Target != "www@abc1234" {
		t.Fatalf("read back %+v held=%v err=%v", h, ok, err)
	}
	// Someone else's ID does not release it; the holder's does.
	if err := st.Remove(ctx, "lab--www", "not-the-holder"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Read(ctx, "lab--www"); !ok {
		t.Fatal("a foreign ID released the lock")
	}
	if err := st.Remove(ctx, "lab--www", winners[0].Info.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Read(ctx, "lab--www"); ok {
		t.Fatal("the holder's release left the lock held")
	}
}
