package lock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/shell"
)

// The DirStore tests run its script with the local sh in a temporary
// directory, as sshd would run it on the lock machine: the real flock,
// mkdir, mv and date.

func realStore(t *testing.T) DirStore {
	t.Helper()
	return DirStore{Runner: &shell.LocalRunner{}, Dir: filepath.Join(t.TempDir(), "it's locks"), Host: "lb1"}
}

// age makes the lock machine's record of lock name look last renewed ago.
func age(t *testing.T, st DirStore, name string, ago time.Duration) {
	t.Helper()
	stamp := strconv.FormatInt(time.Now().Add(-ago).Unix(), 10) + "\n"
	if err := os.WriteFile(filepath.Join(st.lockDir(name), "renewed"), []byte(stamp), 0o644); err != nil {
		t.Fatal(err)
	}
}

func realLocker(st DirStore, machine string, pid int) *Locker {
	return &Locker{Store: st, TTL: time.Minute, Self: Process{Machine: machine, Boot: "b", PID: pid}, Gone: func(Process) bool { return false }}
}

func TestDirStoreWithRealShell(t *testing.T) {
	st := realStore(t)
	if h, err := st.Read(ctx, "lab--www"); h != nil || err != nil {
		t.Fatalf("fresh store: holder %+v err=%v", h, err)
	}
	// Many deployers at once: exactly one gets the lock.
	start := time.Now().Truncate(time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []*Lock
	var refused int
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lk, err := realLocker(st, fmt.Sprintf("ci-%d", i), 100).Acquire(ctx, Request{Name: "lab--www", Target: "www@abc1234"})
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
	w := winners[0]
	h, err := st.Read(ctx, "lab--www")
	if err != nil || h == nil || h.ID != w.Holder.ID || h.Target != "www@abc1234" || h.Since.Before(start) || !h.Renewed.Equal(h.Since) {
		t.Fatalf("read back %+v err=%v; want the winner's record stamped now", h, err)
	}
	// Renewal by the holder's ID only.
	age(t, st, "lab--www", 30*time.Second)
	renewing := time.Now().Truncate(time.Second)
	if cur, ok, err := st.Renew(ctx, "lab--www", "not-the-holder"); ok || err != nil || cur == nil || cur.ID != w.Holder.ID {
		t.Errorf("renew with a foreign ID = %+v, %v, %v; want refused, naming the holder", cur, ok, err)
	}
	if cur, ok, err := st.Renew(ctx, "lab--www", w.Holder.ID); !ok || err != nil || cur.Renewed.Before(renewing) {
		t.Errorf("renew by the holder = %+v, %v, %v; want renewed now", cur, ok, err)
	}
	// Someone else's ID does not release it; the holder's does.
	if _, removed, err := st.Remove(ctx, "lab--www", "not-the-holder"); removed || err != nil {
		t.Fatalf("remove with a foreign ID: removed=%v err=%v", removed, err)
	}
	if h, _ := st.Read(ctx, "lab--www"); h == nil {
		t.Fatal("a foreign ID released the lock")
	}
	if _, removed, err := st.Remove(ctx, "lab--www", w.Holder.ID); !removed || err != nil {
		t.Fatalf("remove by the holder: removed=%v err=%v", removed, err)
	}
	if h, _ := st.Read(ctx, "lab--www"); h != nil {
		t.Fatal("the holder's release left the lock held")
	}
	if cur, ok, err := st.Renew(ctx, "lab--www", w.Holder.ID); ok || cur != nil || err != nil {
		t.Errorf("renew of a free lock = %+v, %v, %v; want not renewed, no holder", cur, ok, err)
	}
}

// TestDirStoreTakeoverWithRealShell: the script itself judges expiry by its
// machine's clock and compares the holder's ID, so of many deployers taking
// over one expired lock, and of a takeover racing a renewal, one wins.
func TestDirStoreTakeoverWithRealShell(t *testing.T) {
	st := realStore(t)
	old, err := realLocker(st, "ci-1", 100).Acquire(ctx, Request{Name: "n", Target: "www@aaa1111", Message: "release 41"})
	if err != nil {
		t.Fatal(err)
	}
	// Not expired: the script refuses the swap even if asked.
	info := Info{ID: "intruder", Who: "x@y", TTL: time.Minute}
	if _, won, err := st.Take(ctx, "n", info, &Takeover{ID: old.Holder.ID, IfExpired: time.Minute}); won || err != nil {
		t.Fatalf("takeover of a fresh lock: won=%v err=%v, want refused by the lock machine", won, err)
	}
	age(t, st, "n", 2*time.Minute)
	// A swap naming another holder does nothing.
	if _, won, err := st.Take(ctx, "n", info, &Takeover{ID: "someone-else", IfExpired: time.Minute}); won || err != nil {
		t.Fatalf("takeover naming the wrong holder: won=%v err=%v, want refused", won, err)
	}
	taking := time.Now().Truncate(time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []*Lock
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lk, err := realLocker(st, fmt.Sprintf("ci-%d", 10+i), 100).Acquire(ctx, Request{Name: "n", Target: "www@bbb2222"})
			if err != nil && !errors.Is(err, ErrHeld) {
				t.Errorf("acquire: %v", err)
			}
			if err == nil {
				mu.Lock()
				winners = append(winners, lk)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d deployers took the expired lock over, want 1", len(winners))
	}
	w := winners[0]
	if w.TookOver == nil || w.TookOver.ID != old.Holder.ID || w.TookOver.Message != "release 41" || w.TookOver.Age < 2*time.Minute {
		t.Errorf("took over %+v, want the expired holder, 2m old", w.TookOver)
	}
	if h, _ := st.Read(ctx, "n"); h == nil || h.ID != w.Holder.ID || h.Renewed.Before(taking) || h.Since.Before(taking) {
		t.Errorf("holder = %+v, want the winner, just renewed", h)
	}
	// The old holder's renewal and release now fail; the winner keeps it.
	if _, ok, _ := st.Renew(ctx, "n", old.Holder.ID); ok {
		t.Error("the old holder renewed a lock taken over")
	}
	_ = realLocker(st, "ci-1", 100).Release(ctx, old)
	if h, _ := st.Read(ctx, "n"); h == nil || h.ID != w.Holder.ID {
		t.Errorf("after the old holder's release: %+v, want the winner's", h)
	}
}

// TestDirStoreRecordlessLock: a lock directory with no record (an older
// gantry killed between mkdir and writing it) counts as held while young,
// by its own age, and is taken over once expired.
func TestDirStoreRecordlessLock(t *testing.T) {
	st := realStore(t)
	if err := os.MkdirAll(st.lockDir("n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l := realLocker(st, "ci-1", 100)
	if _, err := l.Acquire(ctx, Request{Name: "n"}); !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "no record") {
		t.Fatalf("acquire of a fresh recordless lock: %v, want refused", err)
	}
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(st.lockDir("n"), old, old); err != nil {
		t.Fatal(err)
	}
	lk, err := l.Acquire(ctx, Request{Name: "n"})
	if err != nil || lk.TookOver == nil {
		t.Fatalf("acquire of a 2m-old recordless lock = %+v, %v; want it taken over", lk, err)
	}
}

// TestDirStoreCannotWrite: a lock directory that cannot be created is
// reported as such, with its path and machine, never as "held".
func TestDirStoreCannotWrite(t *testing.T) {
	base := t.TempDir()
	blocker := filepath.Join(base, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st := DirStore{Runner: &shell.LocalRunner{}, Dir: filepath.Join(blocker, "locks"), Host: "lb1"}
	_, err := realLocker(st, "ci-1", 100).Acquire(ctx, Request{Name: "lab--www"})
	if err == nil || errors.Is(err, ErrHeld) {
		t.Fatalf("acquire in an uncreatable directory: %v, want a write error", err)
	}
	for _, want := range []string{"cannot write the lock directory", filepath.Join(blocker, "locks", "lab--www.lock"), "on lb1", "Not a directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// Reading a lock there says it is free (there is none).
	if h, err := st.Read(ctx, "lab--www"); h != nil || err != nil {
		t.Errorf("read = %+v, %v", h, err)
	}
}

// A take on a free lock says how long it had been free, by the lock
// machine's release mark: what a deployer read before taking it was read
// while nobody held it only when that span covers the read.
func TestTakeSaysHowLongTheLockWasFree(t *testing.T) {
	st := realStore(t)
	l := realLocker(st, "ci", 100)
	first, err := l.Acquire(ctx, Request{Name: "lab--www"})
	if err != nil {
		t.Fatal(err)
	}
	if first.Holder.FreeFor != NeverHeld {
		t.Errorf("first take ever: free for %v, want NeverHeld", first.Holder.FreeFor)
	}
	if !first.FreeSince(time.Now().Add(-time.Hour), time.Now()) {
		t.Error("a lock never held was free since any time")
	}
	if err := l.Release(ctx, first); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	time.Sleep(300 * time.Millisecond)
	readFrom := time.Now() // a read begun after the release
	second, err := l.Acquire(ctx, Request{Name: "lab--www"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if got := second.Holder.FreeFor; got < 300*time.Millisecond || got > now.Sub(released)+time.Second {
		t.Errorf("released %v before the take: free for %v", now.Sub(released), got)
	}
	if !second.FreeSince(readFrom, now) {
		t.Errorf("read begun after the release (free for %v): FreeSince said it was held meanwhile", second.Holder.FreeFor)
	}
	if second.FreeSince(released.Add(-time.Second), now) {
		t.Errorf("read begun before the release (free for %v): FreeSince said nobody held the lock meanwhile", second.Holder.FreeFor)
	}

	// Taken over from an expired holder: its holder may have been writing.
	age(t, st, "lab--www", 2*time.Minute)
	third, err := realLocker(st, "other", 200).Acquire(ctx, Request{Name: "lab--www"})
	if err != nil || third.TookOver == nil {
		t.Fatalf("expired lock: took over %+v, err=%v", third, err)
	}
	if third.FreeSince(time.Now(), time.Now()) {
		t.Error("a lock taken over was never free")
	}

	// A lock released by an older gantry (no mark) is not known free.
	if err := realLocker(st, "other", 200).Release(ctx, third); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(st.Dir, "lab--www.flock.released")); err != nil {
		t.Fatal(err)
	}
	fourth, err := l.Acquire(ctx, Request{Name: "lab--www"})
	if err != nil {
		t.Fatal(err)
	}
	if fourth.Holder.FreeFor != 0 || fourth.FreeSince(time.Now(), time.Now()) {
		t.Errorf("no release mark: free for %v, want unknown (0)", fourth.Holder.FreeFor)
	}

	// A release that leaves no mark after one that did (cut off between
	// removing the lock and writing its mark, or an older gantry's) is
	// not taken for the earlier one: the take says unknown.
	if err := l.Release(ctx, fourth); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	fifth, err := l.Acquire(ctx, Request{Name: "lab--www"})
	if err != nil || fifth.Holder.FreeFor < 300*time.Millisecond {
		t.Fatalf("after a release with its mark: free for %v, err=%v", fifth.Holder.FreeFor, err)
	}
	if err := os.RemoveAll(filepath.Join(st.Dir, "lab--www.lock")); err != nil {
		t.Fatal(err)
	}
	readFrom = time.Now()
	sixth, err := l.Acquire(ctx, Request{Name: "lab--www"})
	if err != nil {
		t.Fatal(err)
	}
	if sixth.Holder.FreeFor != 0 || sixth.FreeSince(readFrom.Add(-100*time.Millisecond), time.Now()) {
		t.Errorf("released with no mark after one with a mark: free for %v, want unknown (0)", sixth.Holder.FreeFor)
	}
}
