package lb

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/canary"
	"github.com/gantry-dev/gantry/internal/shell"
)

// logLine is a line in canary.LogFormat.
func logLine(ua, us, urt string) string {
	return `127.0.0.1 - - [29/Nov/2026:08:50:00 +0000] "GET /?q=1 HTTP/1.1" 200 20 "-" "loadgen" ua="` + ua + `" us="` + us + `" urt="` + urt + `"` + "\n"
}

// sampleLog has every kind of line: plain, retried (comma lists),
// internal redirects (" : "), client aborts, no upstream, gateway errors,
// slow answers, forged tags in the request, and garbage.
func sampleLog(n int, seed int64) string {
	rng := rand.New(rand.NewSource(seed))
	hosts := []string{"127.0.2.1:8080", "127.0.2.2:8080", "127.0.2.3:8080", "[fd00::4]:8080", "unix:/run/app.sock"}
	h := func() string { return hosts[rng.Intn(len(hosts))] }
	t := func() string { return fmt.Sprintf("%d.%03d", rng.Intn(3)*rng.Intn(2), rng.Intn(1000)) }
	st := func() string {
		return []string{"200", "200", "200", "304", "404", "500", "502", "503", "504"}[rng.Intn(9)]
	}
	var b strings.Builder
	for i := 0; i < n; i++ {
		switch rng.Intn(15) {
		case 8: // tags in another order, tab-separated: the slow path
			b.WriteString("x\turt=\"" + t() + "\"\tus=\"" + st() + "\"\tua=\"" + h() + "\"\ttrailing\n")
		case 9: // a value holding '=', and a field after the tags: the slow path
			b.WriteString(logLine("odd=name:80, "+h(), "200, 200", t()+", "+t()))
			b.WriteString(strings.TrimSuffix(logLine(h(), st(), t()), "\n") + ` x="y"` + "\n")
		case 10: // a tag glued to a quote is not a tag
			b.WriteString(`"ua="` + h() + `" us="200" urt="0.001"` + "\n")
		case 0:
			b.WriteString(logLine(h()+", "+h(), "502, "+st(), "0.000, "+t()))
		case 1:
			b.WriteString(logLine(h()+", "+h()+" : "+h(), "504, 500 : "+st(), t()+", "+t()+" : "+t()))
		case 2:
			b.WriteString(logLine(h(), "-", "-"))
		case 3:
			b.WriteString(logLine("-", "-", "-"))
		case 4:
			b.WriteString("garbage \x01\xfe line ua=\"x\"\n")
		case 5:
			b.WriteString(`1.2.3.4 - - [x] "GET /?ua="evil:1"&us="500" HTTP/1.1" 200 1 ` + strings.TrimPrefix(logLine(h(), st(), t()), "127.0.0.1 - - [29/Nov/2026:08:50:00 +0000] "))
		case 6:
			b.WriteString(logLine(h()+", "+h(), "200", "0.001")) // lists of different lengths
		case 7:
			b.WriteString("\n")
		default:
			b.WriteString(logLine(h(), st(), t()))
		}
	}
	return b.String()
}

func writeLog(t testing.TB, file, text string, flag int) {
	t.Helper()
	f, err := os.OpenFile(file, flag|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func appendLog(t testing.TB, file, text string) { writeLog(t, file, text, os.O_APPEND) }

func mustRead(t *testing.T, from LogPosition, max int64) LogRead {
	t.Helper()
	lr, err := ReadAccessLog(context.Background(), &shell.LocalRunner{}, from, max)
	if err != nil {
		t.Fatal(err)
	}
	return lr
}

func sameStats(t *testing.T, what string, got, want *canary.Stats) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: awk and the Go reference disagree:\n awk %+v\n  go %+v", what, dump(got), dump(want))
	}
}

func dump(s *canary.Stats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "lines=%d noup=%d skipped=%d", s.Lines, s.NoUpstream, s.Skipped)
	for _, a := range s.Addrs() {
		fmt.Fprintf(&b, "\n  %s %+v", a, *s.Upstreams[a])
	}
	return b.String()
}

// TestAwkAgreesWithGo: the awk script run on the load balancer counts a
// log exactly as the Go reference parser does, with every awk found here.
func TestAwkAgreesWithGo(t *testing.T) {
	text := sampleLog(5000, 1)
	for _, awk := range []string{"mawk", "gawk", "original-awk", "busybox"} {
		bin, err := exec.LookPath(awk)
		if err != nil {
			continue
		}
		t.Run(awk, func(t *testing.T) {
			dir := t.TempDir()
			shim := filepath.Join(dir, "bin")
			os.MkdirAll(shim, 0o755)
			script := "#!/bin/sh\nexec " + shell.Quote(bin) + " \"$@\"\n"
			if awk == "busybox" {
				script = "#!/bin/sh\nexec " + shell.Quote(bin) + " awk \"$@\"\n"
			}
			os.WriteFile(filepath.Join(shim, "awk"), []byte(script), 0o755)
			t.Setenv("PATH", shim+":"+os.Getenv("PATH"))

			file := filepath.Join(dir, "access.log")
			writeLog(t, file, text, os.O_TRUNC)
			lr := mustRead(t, beginning(t, file), 0)
			sameStats(t, "whole log", lr.Stats, canary.ParseLog(text))
			if lr.Next.Offset != int64(len(text)) || lr.Bytes != int64(len(text)) || len(lr.Notes) != 0 {
				t.Errorf("next %+v, bytes %d, notes %q; want offset %d", lr.Next, lr.Bytes, lr.Notes, len(text))
			}
			if lr.Stats.Skipped == 0 || lr.Stats.NoUpstream == 0 || len(lr.Stats.Upstreams) != 6 {
				t.Errorf("the sample lacks a kind of line: %s", dump(lr.Stats))
			}
		})
	}
}

// startOf is where file ends now.
func startOf(t testing.TB, file string) LogPosition {
	t.Helper()
	p, err := AccessLogStart(context.Background(), &shell.LocalRunner{}, file)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// beginning is the position of file's start.
func beginning(t testing.TB, file string) LogPosition {
	p := startOf(t, file)
	p.Offset = 0
	return p
}

// TestReadAccessLogReadsWhatWasAppended: a bake counts only the lines
// written after it started, and a line nginx is still writing waits for
// the next read.
func TestReadAccessLogReadsWhatWasAppended(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "access.log")
	before := sampleLog(100, 2)
	writeLog(t, file, before, os.O_TRUNC)
	start, err := AccessLogStart(context.Background(), &shell.LocalRunner{}, file)
	if err != nil {
		t.Fatal(err)
	}
	if start.Offset != int64(len(before)) || start.File != file {
		t.Fatalf("start %+v", start)
	}

	during := sampleLog(300, 3)
	partial := logLine("127.0.2.1:8080", "500", "0.001")
	appendLog(t, file, during+partial[:40])
	lr := mustRead(t, start, 0)
	sameStats(t, "appended", lr.Stats, canary.ParseLog(during))
	if want := start.Offset + int64(len(during)); lr.Next.Offset != want {
		t.Errorf("next offset %d, want %d (before the unfinished line)", lr.Next.Offset, want)
	}

	appendLog(t, file, partial[40:])
	lr2 := mustRead(t, lr.Next, 0)
	sameStats(t, "the finished line", lr2.Stats, canary.ParseLog(partial))

	whole := mustRead(t, LogPosition{File: file}, 0)
	sameStats(t, "from a zero position", whole.Stats, canary.ParseLog(before+during+partial))
	if len(whole.Notes) != 0 || whole.Next != lr2.Next {
		t.Errorf("from a zero position: notes %q, next %+v, want %+v", whole.Notes, whole.Next, lr2.Next)
	}

	lr3 := mustRead(t, lr2.Next, 0)
	if lr3.Stats.Lines != 0 || lr3.Next != lr2.Next {
		t.Errorf("nothing appended: read %s, next %+v", dump(lr3.Stats), lr3.Next)
	}
}

// TestReadAccessLogLimit: a read stops at its limit and says so; the next
// one goes on from there.
func TestReadAccessLogLimit(t *testing.T) {
	file := filepath.Join(t.TempDir(), "access.log")
	text := sampleLog(400, 4)
	writeLog(t, file, text, os.O_TRUNC)
	from := beginning(t, file)
	total := canary.NewStats()
	for i := 0; from.Offset < int64(len(text)); i++ {
		if i > 100 {
			t.Fatal("reads make no progress")
		}
		lr := mustRead(t, from, 4096)
		if lr.Next.Offset < int64(len(text)) && (len(lr.Notes) != 1 || !strings.Contains(lr.Notes[0], "the rest on the next read")) {
			t.Errorf("notes %q", lr.Notes)
		}
		total.Merge(lr.Stats)
		from = lr.Next
	}
	sameStats(t, "read in pieces", total, canary.ParseLog(text))
}

// TestReadAccessLogRotation: rotation by rename (the old file still
// beside it), by removal, and truncation in place.
func TestReadAccessLogRotation(t *testing.T) {
	a, b, c := sampleLog(50, 5), sampleLog(60, 6), sampleLog(70, 7)
	t.Run("renamed", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "access.log")
		writeLog(t, file, a, os.O_TRUNC)
		start := startOf(t, file)
		appendLog(t, file, b)
		if err := os.Rename(file, file+".1"); err != nil {
			t.Fatal(err)
		}
		writeLog(t, file, c, os.O_TRUNC)
		lr := mustRead(t, start, 0)
		sameStats(t, "rest of the old file and the new one", lr.Stats, canary.ParseLog(b+c))
		if lr.Next.Inode == start.Inode || lr.Next.Offset != int64(len(c)) {
			t.Errorf("next %+v", lr.Next)
		}
		if len(lr.Notes) != 1 || !strings.Contains(lr.Notes[0], "was rotated: read the rest of the previous file (now "+file+".1)") {
			t.Errorf("notes %q", lr.Notes)
		}
	})
	t.Run("removed", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "access.log")
		writeLog(t, file, a, os.O_TRUNC)
		start := startOf(t, file)
		os.Remove(file)
		// The new file may well get the old one's inode.
		c := "another first line\n" + c
		writeLog(t, file, c, os.O_TRUNC)
		lr := mustRead(t, start, 0)
		sameStats(t, "the new file", lr.Stats, canary.ParseLog(c))
		if len(lr.Notes) != 1 || !strings.Contains(lr.Notes[0], "read the new file from its start") || !strings.Contains(lr.Notes[0], "not counted") {
			t.Errorf("notes %q", lr.Notes)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "access.log")
		writeLog(t, file, a+b, os.O_TRUNC)
		start := startOf(t, file)
		writeLog(t, file, c[:len(c)/2], os.O_TRUNC)
		lr := mustRead(t, start, 0)
		if len(lr.Notes) != 1 || !strings.Contains(lr.Notes[0], "was truncated or replaced (the same inode, now shorter or with other first bytes): read the new file from its start") {
			t.Errorf("notes %q", lr.Notes)
		}
		if lr.Next.Offset > int64(len(c)/2) || lr.Next.Inode != start.Inode {
			t.Errorf("next %+v", lr.Next)
		}
	})
}

// TestReadAccessLogQuotesThePath: the path comes from the config and is
// passed to the shell quoted.
func TestReadAccessLogQuotesThePath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, `it's a "log" $(touch pwned) ;x`)
	text := sampleLog(30, 8)
	writeLog(t, file, text, os.O_TRUNC)
	lr := mustRead(t, beginning(t, file), 0)
	sameStats(t, "odd path", lr.Stats, canary.ParseLog(text))
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("the path was run as a command")
	}
	if _, err := AccessLogStart(context.Background(), &shell.LocalRunner{}, filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing log has a position")
	}
}
