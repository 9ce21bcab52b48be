package fleet

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-dev/gantry/inventory"
)

func TestLinePrefixerWritesWholeLinesPrefixed(t *testing.T) {
	var out strings.Builder
	w := &lineWriter{out: &out}
	p := &linePrefixer{w: w, prefix: "host1  | "}
	for _, chunk := range []string{"first li", "ne\nsecond\nthi", "rd", "\n\nlast without newline"} {
		if n, err := p.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	p.Flush()
	p.Flush() // nothing held: writes nothing
	want := "host1  | first line\nhost1  | second\nhost1  | third\nhost1  | \nhost1  | last without newline\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// A line that never ends is not held for ever: once maxLine bytes of it
// are held, they are written as a line.
func TestLinePrefixerCutsOverlongLines(t *testing.T) {
	var out strings.Builder
	p := &linePrefixer{w: &lineWriter{out: &out}, prefix: "h | "}
	for range 3 {
		p.Write([]byte(strings.Repeat("x", maxLine/2)))
	}
	p.Write([]byte("end\n"))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || lines[0] != "h | "+strings.Repeat("x", maxLine) || lines[1] != "h | "+strings.Repeat("x", maxLine/2)+"end" {
		t.Errorf("got %d lines of lengths %v", len(lines), lens(lines))
	}
}

func lens(lines []string) []int {
	var n []int
	for _, l := range lines {
		n = append(n, len(l))
	}
	return n
}

// Lines of several hosts written at once, each in small pieces, come out
// whole: never two hosts' pieces in one line.
func TestLinesOfHostsNeverMix(t *testing.T) {
	var out strings.Builder
	w := &lineWriter{out: &out}
	var wg sync.WaitGroup
	for _, host := range []string{"host1", "host2", "host10"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &linePrefixer{w: w, prefix: fmt.Sprintf("%-6s | ", host)}
			for i := range 200 {
				line := fmt.Sprintf("%s line %d\n", host, i)
				for j := 0; j < len(line); j += 3 {
					p.Write([]byte(line[j:min(j+3, len(line))]))
				}
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 600 {
		t.Fatalf("%d lines, want 600", len(lines))
	}
	for _, l := range lines {
		prefix, rest, _ := strings.Cut(l, " | ")
		host := strings.TrimSpace(prefix)
		if len(prefix) != 6 || !strings.HasPrefix(rest, host+" line ") {
			t.Fatalf("mixed or misaligned line %q", l)
		}
	}
}

func TestCheckTail(t *testing.T) {
	for _, ok := range []string{"", "all", "0", "5", "1000"} {
		if err := CheckTail(ok); err != nil {
			t.Errorf("CheckTail(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"-1", "x", "5x", "All"} {
		err := CheckTail(bad)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), fmt.Sprintf("--tail %q", bad)) {
			t.Errorf("CheckTail(%q) = %v, want a refusal naming it", bad, err)
		}
	}
}

func TestPickHosts(t *testing.T) {
	all := []inventory.Host{
		{Name: "web10", Services: []string{"www"}},
		{Name: "web2", Services: []string{"www", "worker"}},
		{Name: "db1", Services: []string{"pg"}},
		{Name: "web1", Services: []string{"www"}},
	}
	names := func(hs []inventory.Host) string {
		var n []string
		for _, h := range hs {
			n = append(n, h.Name)
		}
		return strings.Join(n, " ")
	}
	for _, tc := range []struct {
		service, host string
		want          string // host names, or the error's text
	}{
		{"www", "", "web1 web2 web10"},
		{"www", "web10", "web10"},
		{"worker", "", "web2"},
		{"www", "web3", "refused before any change: --host web3: environment prod has no host web3 (hosts of www: web1, web2, web10)"},
		{"www", "db1", "refused before any change: --host db1: host db1 of environment prod does not run service www (hosts of www: web1, web2, web10)"},
		{"cron", "", "refused before any change: no host of environment prod runs service cron"},
	} {
		got, err := pickHosts(all, "prod", tc.service, tc.host)
		s := names(got)
		if err != nil {
			s = err.Error()
			if !errors.Is(err, ErrRefused) {
				t.Errorf("%s --host %q: error %v is not a refusal", tc.service, tc.host, err)
			}
		}
		if s != tc.want {
			t.Errorf("%s --host %q:\n got %s\nwant %s", tc.service, tc.host, s, tc.want)
		}
	}
	if all[0].Name != "web10" {
		t.Errorf("pickHosts reordered its input: %v", names(all))
	}
}

func TestCheckCmd(t *testing.T) {
	if err := checkCmd([]string{"/app", "a b", "$HOME"}); err != nil {
		t.Errorf("checkCmd: %v", err)
	}
	for _, bad := range [][]string{nil, {}, {""}} {
		if err := checkCmd(bad); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "after --") {
			t.Errorf("checkCmd(%q) = %v, want a refusal saying to give it after --", bad, err)
		}
	}
}
