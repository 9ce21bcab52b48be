package lb

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/canary"
	"github.com/gantry-dev/gantry/internal/shell"
)

// DefaultAccessLogMaxRead bounds how many bytes of access log one read
// aggregates: what was appended beyond it is left for the next read, so a
// read takes a bounded time however busy the log (about 2 s per 100 MiB
// with mawk; see BenchmarkAggregateAccessLog).
const DefaultAccessLogMaxRead = 512 << 20

// AccessLogTimeout bounds one access log command on the load balancer,
// session set-up included; on the host itself awk runs under timeout(1)
// when the host has it, so it does not outlive a cut connection.
const AccessLogTimeout = 60 * time.Second

// LogPosition is a place in a load balancer's access log: the file, the
// inode it had, and the byte offset up to which it has been read.
type LogPosition struct {
	File   string
	Inode  uint64
	Offset int64
	// Head is cksum's output ("CRC LENGTH") for the file's first bytes
	// (up to 128): a file removed and created again may get the same
	// inode, but not the same first line.
	Head string
}

// headScript prints cksum's output for the first bytes of "$f".
const headScript = `head -c 128 -- "$f" | cksum`

// LogRead is what one read of an access log brought back.
type LogRead struct {
	// Stats counts the lines read, per upstream address.
	Stats *canary.Stats
	// Next is where the next read starts.
	Next LogPosition
	// Bytes is how many bytes of log were aggregated.
	Bytes int64
	// Notes say what the reader had to do beyond reading what was
	// appended: the log was rotated or truncated (and whether lines were
	// lost), or the read stopped at its limit.
	Notes []string
}

// AccessLogStart returns where access log file ends now, on the load
// balancer r runs commands on: the start of a bake.
func AccessLogStart(ctx context.Context, r Runner, file string) (LogPosition, error) {
	ctx, cancel := context.WithTimeout(ctx, AccessLogTimeout)
	defer cancel()
	out, err := runIdempotent(ctx, r, "export LC_ALL=C; f="+shell.Quote(file)+"; stat -L -c '%i %s' -- \"$f\" && "+headScript, nil)
	if err != nil {
		return LogPosition{}, fmt.Errorf("access log %s: %w", file, err)
	}
	p := LogPosition{File: file}
	stat, head, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if _, err := fmt.Sscanf(stat, "%d %d", &p.Inode, &p.Offset); err != nil || head == "" {
		return LogPosition{}, fmt.Errorf("access log %s: stat and cksum printed %q", file, out)
	}
	p.Head = head
	return p, nil
}

// ReadAccessLog aggregates, on the load balancer, what was appended to
// the access log since from, and returns the counts (only they travel
// back) and where to read next. At most maxBytes are read per file (0:
// DefaultAccessLogMaxRead); a last line nginx has not finished writing is
// left for the next read.
//
// When the file at from.File has another inode (logrotate moved it away
// and nginx reopened a new one), the rest of the old file is read first
// if a file with its inode is still in the same directory, then the new
// file from its start; when the file shrank (truncated in place), it is
// read from its start. Notes say which, and whether lines were lost. A
// zero from (but its File) reads the whole file.
func ReadAccessLog(ctx context.Context, r Runner, from LogPosition, maxBytes int64) (LogRead, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultAccessLogMaxRead
	}
	ctx, cancel := context.WithTimeout(ctx, AccessLogTimeout)
	defer cancel()
	out, err := runIdempotent(ctx, r, readLogScript(from, maxBytes, int(AccessLogTimeout/time.Second)-5), nil)
	if err != nil {
		return LogRead{}, fmt.Errorf("reading access log %s: %w", from.File, err)
	}
	return parseLogRead(from, string(out))
}

// AccessLogStart is AccessLogStart on this load balancer.
func (n Options) AccessLogStart(ctx context.Context, file string) (LogPosition, error) {
	p, err := AccessLogStart(ctx, n.Runner, file)
	if err != nil {
		return p, fmt.Errorf("%s: %w", n.Name, err)
	}
	return p, nil
}

// ReadAccessLog is ReadAccessLog on this load balancer, with the default
// limit.
func (n Options) ReadAccessLog(ctx context.Context, from LogPosition) (LogRead, error) {
	lr, err := ReadAccessLog(ctx, n.Runner, from, 0)
	if err != nil {
		return lr, fmt.Errorf("%s: %w", n.Name, err)
	}
	return lr, nil
}

// runIdempotent runs a read-only command, again after a broken connection
// when the runner can.
func runIdempotent(ctx context.Context, r Runner, command string, stdin []byte) ([]byte, error) {
	if rr, ok := r.(RetryingRunner); ok {
		return rr.RunIdempotent(ctx, command, stdin)
	}
	return r.Run(ctx, command, stdin)
}

// readLogScript prints the file's inode and size ("F"), what it found
// when the inode changed or the file shrank ("R"), and for each stretch it
// aggregates an "S" line (label, start, length, path) followed by the awk
// summary.
func readLogScript(from LogPosition, maxBytes int64, secs int) string {
	return fmt.Sprintf(`export LC_ALL=C
f=%s; dir=%s; ino=%d; off=%d; max=%d; head=%s
T=; command -v timeout >/dev/null 2>&1 && T="timeout %d"
cur=$(stat -L -c '%%i %%s' -- "$f") || exit 3
nino=${cur%% *}; nsize=${cur#* }
echo "F	$nino	$nsize"
echo "H	$(%s)"
seg() {
	len=$4; [ "$len" -gt "$max" ] && len=$max
	printf 'S\t%%s\t%%s\t%%s\t%%s\t%%s\n' "$1" "$3" "$len" "$4" "$2"
	tail -c +$(($3 + 1)) -- "$2" | head -c "$len" | $T awk -v seglen="$len" %s || exit 4
}
if [ "$ino" = 0 ]; then
	seg current "$f" 0 "$nsize"
	exit 0
fi
same=1
if [ -n "$head" ] && [ "$nsize" -ge "${head#* }" ] && [ "$(head -c "${head#* }" -- "$f" | cksum)" != "$head" ]; then
	same=
fi
if [ "$nino" = "$ino" ] && [ "$nsize" -ge "$off" ] && [ -n "$same" ]; then
	seg current "$f" "$off" $((nsize - off))
	exit 0
fi
if [ "$nino" = "$ino" ]; then
	echo "R	truncated"
else
	rot=$(find "$dir" -maxdepth 1 -inum "$ino" -type f 2>/dev/null | head -n 1)
	if [ -n "$rot" ] && rs=$(stat -c %%s -- "$rot") && [ "$rs" -ge "$off" ]; then
		echo "R	rotated	$rot"
		seg rotated "$rot" "$off" $((rs - off))
	else
		echo "R	lost"
	fi
fi
seg current "$f" 0 "$nsize"
`, shell.Quote(from.File), shell.Quote(path.Dir(from.File)), from.Inode, from.Offset, maxBytes, shell.Quote(from.Head), secs, headScript, shell.Quote(canary.AwkProgram()))
}

// parseLogRead reads readLogScript's output.
func parseLogRead(from LogPosition, out string) (LogRead, error) {
	lr := LogRead{Stats: canary.NewStats(), Next: from}
	var (
		inode   uint64
		head    string
		sawFile bool
		label   string
		start   int64
		length  int64
		avail   int64
		segPath string
		body    strings.Builder
	)
	finish := func() error {
		if label == "" {
			return nil
		}
		s, consumed, err := canary.ParseSummary(body.String())
		if err != nil {
			return fmt.Errorf("%s of %s: %w", label, segPath, err)
		}
		lr.Stats.Merge(s)
		lr.Bytes += consumed
		if label == "current" {
			lr.Next = LogPosition{File: from.File, Inode: inode, Offset: start + consumed, Head: head}
		}
		if length < avail {
			rest := "the rest on the next read"
			if label != "current" {
				rest = "the rest is not counted"
			}
			lr.Notes = append(lr.Notes, fmt.Sprintf("read %d of the %d bytes appended to %s (the limit of one read): %s", length, avail, segPath, rest))
		}
		label = ""
		body.Reset()
		return nil
	}
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		f := strings.Split(line, "\t")
		switch {
		case f[0] == "F" && len(f) == 3 && !sawFile:
			i, err1 := strconv.ParseUint(f[1], 10, 64)
			_, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				return LogRead{}, fmt.Errorf("access log %s: unexpected line %q", from.File, line)
			}
			inode, sawFile = i, true
		case f[0] == "H" && len(f) == 2:
			head = f[1]
		case f[0] == "R" && len(f) >= 2:
			switch f[1] {
			case "truncated":
				lr.Notes = append(lr.Notes, fmt.Sprintf("access log %s was truncated or replaced (the same inode, now shorter or with other first bytes): read the new file from its start; lines written between the last read and then are not counted", from.File))
			case "rotated":
				lr.Notes = append(lr.Notes, fmt.Sprintf("access log %s was rotated: read the rest of the previous file (now %s), then the new file from its start", from.File, strings.Join(f[2:], "\t")))
			case "lost":
				lr.Notes = append(lr.Notes, fmt.Sprintf("access log %s was rotated and the previous file (inode %d) is no longer beside it: lines written between the last read and the rotation are not counted; read the new file from its start", from.File, from.Inode))
			}
		case f[0] == "S" && len(f) >= 6:
			if err := finish(); err != nil {
				return LogRead{}, err
			}
			n, err := parseInts(f[2:5])
			if err != nil {
				return LogRead{}, fmt.Errorf("access log %s: unexpected line %q", from.File, line)
			}
			label, start, length, avail, segPath = f[1], n[0], n[1], n[2], strings.Join(f[5:], "\t")
		case label != "":
			body.WriteString(line)
			body.WriteByte('\n')
		default:
			return LogRead{}, fmt.Errorf("access log %s: unexpected line %q", from.File, line)
		}
	}
	if !sawFile {
		return LogRead{}, fmt.Errorf("access log %s: the read printed nothing", from.File)
	}
	if err := finish(); err != nil {
		return LogRead{}, err
	}
	return lr, nil
}

func parseInts(fields []string) ([]int64, error) {
	out := make([]int64, len(fields))
	for i, f := range fields {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}
