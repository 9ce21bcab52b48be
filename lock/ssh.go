package lock

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/internal/shell"
)

// Runner runs a shell command on the machine holding the locks.
type Runner interface {
	Run(ctx context.Context, command string, stdin []byte) ([]byte, error)
}

// DirStore keeps each lock as a directory <Dir>/<name>.lock on the machine
// Runner reaches, holding the holder's record (info.json) and the lock
// machine's own times (since, renewed: seconds since the epoch, written by
// that machine's date). Every change happens in one shell script holding
// flock(1) on <Dir>/<name>.flock, which compares the current record's run
// ID before replacing or removing it: that is the compare-and-swap. Readers
// take the same flock, so a record being written is never seen half done.
type DirStore struct {
	Runner Runner
	Dir    string
	// Host names the lock machine in errors.
	Host string
}

// Exit codes of the lock script.
const (
	exitHeld    = 43 // someone else holds it (the record follows)
	exitFree    = 44 // no lock
	exitWrite   = 46 // the lock directory or record could not be written
	exitNoFlock = 47 // flock(1) is missing
	exitBusy    = 48 // flock timed out
)

// flockWait bounds how long the script waits for another script changing
// the same lock (each runs for milliseconds).
const flockWait = 20

// lockScript is the body every operation runs. Variables set before it:
// dir, d (the lock directory), f (the flock file), op, id (the caller's run
// ID, or the ID to remove), want and replace (Take's compare-and-swap) and
// ttl (seconds; >0: replace only if not renewed within it). @NAME@ are the
// exit codes and the flock wait.
const lockScript = `
# Every fork costs milliseconds on a busy machine: the values are read with
# the shell's own read, and the clock once per run (clock).
free=; now=; coarse=
# clock sets ms (the lock machine's time, milliseconds) and now (seconds).
# coarse: this date has no milliseconds (both stamps of a span may be up
# to a second early).
clock() {
	ms=$(date +%s%3N 2>/dev/null)
	case $ms in ''|*[!0-9]*) ms=$(( $(date +%s) * 1000 )); coarse=1;; esac
	now=$((ms / 1000))
}
# curid sets cur to the run ID of the record ("" when none).
curid() {
	rec=; cur=
	{ IFS= read -r rec <"$d/info.json"; } 2>/dev/null
	x=${rec#*\"id\":\"}
	[ "$x" = "$rec" ] || cur=${x%%\"*}
}
stamps() {
	[ -n "$now" ] || clock
	since=; renewed=
	{ read -r since <"$d/since"; } 2>/dev/null
	[ -n "$since" ] || since=$(stat -c %Y "$d" 2>/dev/null) || since=$now
	{ read -r renewed <"$d/renewed"; } 2>/dev/null
	[ -n "$renewed" ] || renewed=$since
}
# The record is one line of JSON (as the deployer writes it).
show() {
	stamps; echo "$now $since $renewed${free:+ $free}"
	rec=; { IFS= read -r rec <"$d/info.json"; } 2>/dev/null; printf '%s\n' "$rec"
}
write() { # the record from stdin into files with suffix $1
	rec=; IFS= read -r rec || [ -n "$rec" ] || return 1
	printf '%s' "$rec" >"$d/info.json$1" && echo "$now" >"$d/since$1" && echo "$now" >"$d/renewed$1"
}
# freefor sets free to "free=S", seconds the lock has been free (by the
# release mark a remove leaves, in milliseconds; at least that long when
# the clock is coarse), "free=never" when it was never taken here, "free=?"
# when it was but left no mark. A take empties the mark (a builtin, no
# fork): a release that leaves none (cut off between its two writes, a
# mark that could not be written, an older gantry) is then unknown, never
# taken for an earlier release's.
freefor() {
	rel=
	{ read -r rel <"$f.released"; } 2>/dev/null
	case $rel in
	''|*[!0-9]*) if [ -n "$fresh" ]; then free=free=never; else free='free=?'; fi ;;
	*) x=$((ms - rel)); [ -z "$coarse" ] || x=$((x - 1000))
	   if [ "$x" -ge 0 ]; then
		y=$((x % 1000 + 1000)); free=free=$((x / 1000)).${y#1}
	   else free='free=?'; fi ;;
	esac
	: 2>/dev/null >"$f.released" || true
}
locked() {
	flock "$1" -w @WAIT@ 9 || { echo "timed out waiting for $f" >&2; exit @BUSY@; }
	clock
	case $op in
	read)
		[ -d "$d" ] || exit @FREE@
		show; exit 0 ;;
	take)
		if [ ! -d "$d" ]; then
			freefor
			mkdir "$d" || exit @WRITE@
			write "" || { rm -rf "$d"; exit @WRITE@; }
			show; exit 0
		fi
		curid
		if [ "$replace" = 1 ] && [ "$cur" = "$want" ]; then
			stamps
			if [ "$ttl" -gt 0 ] && [ $((now - renewed)) -le "$ttl" ]; then show; exit @HELD@; fi
			if ! write .new; then rm -f "$d/info.json.new" "$d/since.new" "$d/renewed.new"; exit @WRITE@; fi
			mv "$d/info.json.new" "$d/info.json" && mv "$d/since.new" "$d/since" && mv "$d/renewed.new" "$d/renewed" || exit @WRITE@
			show; exit 0
		fi
		show; exit @HELD@ ;;
	renew)
		[ -d "$d" ] || exit @FREE@
		curid
		[ "$cur" = "$id" ] || { show; exit @HELD@; }
		{ echo "$now" >"$d/renewed.new" && mv "$d/renewed.new" "$d/renewed"; } || exit @WRITE@
		show; exit 0 ;;
	remove)
		[ -d "$d" ] || exit @FREE@
		show
		curid
		[ "$cur" = "$id" ] || exit @HELD@
		rm -rf "$d" || exit @WRITE@
		echo "$ms" >"$f.released" 2>/dev/null || true
		exit 0 ;;
	esac
}
command -v flock >/dev/null 2>&1 || { echo "flock (util-linux) is not installed" >&2; exit @NOFLOCK@; }
case $op in
take) [ -d "$dir" ] || mkdir -p "$dir" || exit @WRITE@ ;;
*) [ -d "$d" ] || exit @FREE@ ;;
esac
if [ "$op" = read ] && ! true 2>/dev/null 9>>"$f"; then
	# A read-only lock directory can still be read.
	show; exit 0
fi
fresh=; [ -e "$f" ] || fresh=1
true 9>>"$f" || exit @WRITE@
mode=-x; [ "$op" = read ] && mode=-s
locked $mode 9>>"$f"
`

var script = strings.NewReplacer(
	"@WAIT@", strconv.Itoa(flockWait), "@BUSY@", strconv.Itoa(exitBusy), "@FREE@", strconv.Itoa(exitFree),
	"@WRITE@", strconv.Itoa(exitWrite), "@HELD@", strconv.Itoa(exitHeld), "@NOFLOCK@", strconv.Itoa(exitNoFlock),
).Replace(lockScript)

func (s DirStore) lockDir(name string) string { return path.Join(s.Dir, name+".lock") }

// run runs one operation of the lock script and returns the record it
// printed (nil when none) and its exit status (0, exitHeld or exitFree).
func (s DirStore) run(ctx context.Context, name, op, id string, replace *Takeover, stdin []byte) (*Holder, int, error) {
	vars := map[string]string{
		"dir": s.Dir, "d": s.lockDir(name), "f": path.Join(s.Dir, name+".flock"),
		"op": op, "id": id, "want": "", "replace": "0", "ttl": "0",
	}
	if replace != nil {
		vars["want"], vars["replace"] = replace.ID, "1"
		if replace.IfExpired > 0 {
			// Whole seconds, rounded up: expired means strictly older.
			vars["ttl"] = strconv.FormatInt(int64((replace.IfExpired+time.Second-1)/time.Second), 10)
		}
	}
	var b strings.Builder
	for _, k := range []string{"dir", "d", "f", "op", "id", "want", "replace", "ttl"} {
		fmt.Fprintf(&b, "%s=%s\n", k, shell.Quote(vars[k]))
	}
	out, err := s.Runner.Run(ctx, b.String()+script, stdin)
	code := shell.ExitStatus(err)
	switch {
	case err == nil, code == exitHeld:
		h, perr := parseHolder(out)
		if perr != nil {
			return nil, 0, fmt.Errorf("lock record %s on %s: %w", s.lockDir(name), s.Host, perr)
		}
		if err == nil {
			code = 0
		}
		return h, code, nil
	case code == exitFree:
		return nil, exitFree, nil
	case code == exitWrite:
		return nil, 0, fmt.Errorf("cannot write the lock directory %s on %s (permissions, read-only or full disk?): %w", s.lockDir(name), s.Host, err)
	case code == exitNoFlock:
		return nil, 0, fmt.Errorf("cannot keep deploy locks on %s: flock (util-linux) is not installed there: %w", s.Host, err)
	case code == exitBusy:
		return nil, 0, fmt.Errorf("deploy lock %s on %s stayed busy for %ds: %w", s.lockDir(name), s.Host, flockWait, err)
	}
	return nil, 0, fmt.Errorf("deploy lock %s on %s: %w", s.lockDir(name), s.Host, err)
}

// parseHolder reads the script's "now since renewed" line and the record.
func parseHolder(out []byte) (*Holder, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	if !sc.Scan() {
		return nil, fmt.Errorf("no record in %q", out)
	}
	f := strings.Fields(sc.Text())
	if len(f) != 3 && !(len(f) == 4 && strings.HasPrefix(f[3], "free=")) {
		return nil, fmt.Errorf("bad times line %q", sc.Text())
	}
	var freeFor time.Duration
	if len(f) == 4 {
		freeFor = parseFreeFor(strings.TrimPrefix(f[3], "free="))
		f = f[:3]
	}
	var t [3]int64
	for i := range f {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad times line %q: %w", sc.Text(), err)
		}
		t[i] = n
	}
	now, since, renewed := t[0], t[1], t[2]
	h := &Holder{Since: time.Unix(since, 0), Renewed: time.Unix(renewed, 0), Age: time.Duration(now-renewed) * time.Second, FreeFor: freeFor}
	rest := bytes.TrimSpace(out[len(sc.Bytes())+1:])
	if len(rest) == 0 {
		// A directory with no record: made by an older gantry that was
		// killed, or is writing it this instant. Its age is its own.
		h.Who = "unknown (a lock directory with no record)"
		return h, nil
	}
	if err := json.Unmarshal(rest, &h.Info); err != nil {
		return nil, fmt.Errorf("damaged record: %w", err)
	}
	return h, nil
}

// parseFreeFor reads the script's free=VALUE: seconds, "never" or "?".
func parseFreeFor(v string) time.Duration {
	if v == "never" {
		return NeverHeld
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || secs < 0 {
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}

// Take writes info as the lock's record when free, or over the holder
// named by replace.
func (s DirStore) Take(ctx context.Context, name string, info Info, replace *Takeover) (*Holder, bool, error) {
	data, err := json.Marshal(info)
	if err != nil {
		return nil, false, err
	}
	h, code, err := s.run(ctx, name, "take", "", replace, data)
	if err != nil {
		return nil, false, err
	}
	if h == nil {
		return nil, false, fmt.Errorf("deploy lock %s on %s: no record after taking it", s.lockDir(name), s.Host)
	}
	return h, code == 0, nil
}

// Renew restamps the renewal time if id holds the lock.
func (s DirStore) Renew(ctx context.Context, name, id string) (*Holder, bool, error) {
	h, code, err := s.run(ctx, name, "renew", id, nil, nil)
	return h, err == nil && code == 0, err
}

// Read returns the current holder, nil when the lock is free.
func (s DirStore) Read(ctx context.Context, name string) (*Holder, error) {
	h, _, err := s.run(ctx, name, "read", "", nil, nil)
	return h, err
}

// Remove deletes the lock when id holds it.
func (s DirStore) Remove(ctx context.Context, name, id string) (*Holder, bool, error) {
	h, code, err := s.run(ctx, name, "remove", id, nil, nil)
	return h, err == nil && code == 0 && h != nil, err
}
