package canary

import (
	"reflect"
	"testing"
	"time"
)

// line builds a log line in LogFormat with the given upstream fields.
func line(ua, us, urt string) string {
	return `127.0.0.1 - - [29/Nov/2026:08:50:00 +0000] "GET / HTTP/1.1" 200 20 "-" "loadgen" ua="` + ua + `" us="` + us + `" urt="` + urt + `"`
}

func TestParseLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []Attempt
		ok   bool
	}{
		{"one attempt", line("10.0.0.1:8080", "200", "0.012"),
			[]Attempt{{"10.0.0.1:8080", 200, 12}}, true},
		{"retried on a second server", line("10.0.0.1:8080, 10.0.0.2:8080", "502, 200", "0.001, 0.250"),
			[]Attempt{{"10.0.0.1:8080", 502, 1}, {"10.0.0.2:8080", 200, 250}}, true},
		{"internal redirect groups", line("10.0.0.1:8080, 10.0.0.2:8080 : unix:/run/app.sock", "504, 500 : 200", "2.000, 0.003 : 0.000"),
			[]Attempt{{"10.0.0.1:8080", 504, 2000}, {"10.0.0.2:8080", 500, 3}, {"unix:/run/app.sock", 200, 0}}, true},
		{"client went away", line("10.0.0.1:8080", "-", "-"),
			[]Attempt{{"10.0.0.1:8080", 0, -1}}, true},
		{"no upstream", line("-", "-", "-"), nil, true},
		{"rounding to the millisecond", line("a:1", "200", "0.0005"), []Attempt{{"a:1", 200, 1}}, true},
		{"whole seconds", line("a:1", "200", "3"), []Attempt{{"a:1", 200, 3000}}, true},
		{"tags in another order, tab separated", "x\turt=\"0.100\"\tus=\"503\"\tua=\"h:1\"",
			[]Attempt{{"h:1", 503, 100}}, true},
		{"last tag wins", `GET /?ua="evil:1" ` + line("good:1", "200", "0.001"),
			[]Attempt{{"good:1", 200, 1}}, true},
		{"a tag inside another word is not the tag", `xua="evil:1" us="200" urt="0.001" ua="good:1"`,
			[]Attempt{{"good:1", 200, 1}}, true},
		{"missing field", `ua="a:1" us="200"`, nil, false},
		{"unterminated value", `ua="a:1" us="200" urt="0.0`, nil, false},
		{"list lengths differ", line("a:1, b:1", "200", "0.001"), nil, false},
		{"bad status", line("a:1", "20x", "0.001"), nil, false},
		{"bad time", line("a:1", "200", "1."), nil, false},
		{"empty address", line("", "200", "0.001"), nil, false},
		{"empty item", line("a:1, ", "200, 200", "0.001, 0.001"), nil, false},
		{"garbage", "\x00\xff random text", nil, false},
		{"empty line", "", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseLine(tc.line)
			if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseLine(%q) = %v, %v; want %v, %v", tc.line, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestStatsCountEveryAttempt(t *testing.T) {
	s := ParseLog(line("a:1", "200", "0.010") + "\n" +
		line("a:1, b:1", "502, 200", "0.000, 0.020") + "\n" +
		line("b:1", "500", "0.005") + "\n" +
		line("a:1", "-", "-") + "\n" +
		line("-", "-", "-") + "\n" +
		"garbage\n" +
		line("b:1 : a:1", "504 : 200", "5.000 : 0.001")) // no final newline: still a line
	if s.Lines != 7 || s.NoUpstream != 1 || s.Skipped != 1 {
		t.Errorf("lines %d, no upstream %d, skipped %d; want 7, 1, 1", s.Lines, s.NoUpstream, s.Skipped)
	}
	a, b := s.Sum("a:1"), s.Sum("b:1")
	if a.Requests != 4 || a.Errors != 1 || a.GatewayErrors != 1 || a.Aborted != 1 || a.Latency.Count() != 3 {
		t.Errorf("a:1 = %+v", a)
	}
	if b.Requests != 3 || b.Errors != 2 || b.GatewayErrors != 1 || b.Aborted != 0 || b.Latency.Count() != 3 {
		t.Errorf("b:1 = %+v", b)
	}
	both := s.Sum("a:1", "b:1", "a:1", "nobody:1")
	if both.Requests != 7 || both.Errors != 3 {
		t.Errorf("sum = %+v", both)
	}
}

func TestMerge(t *testing.T) {
	x := ParseLog(line("a:1", "200", "0.010") + "\n" + line("a:1", "500", "0.010") + "\n")
	y := ParseLog(line("a:1, b:1", "502, 200", "0.001, 0.001") + "\nnope\n")
	m := NewStats()
	m.Merge(x)
	m.Merge(y)
	m.Merge(nil)
	want := ParseLog(line("a:1", "200", "0.010") + "\n" + line("a:1", "500", "0.010") + "\n" +
		line("a:1, b:1", "502, 200", "0.001, 0.001") + "\nnope\n")
	if !reflect.DeepEqual(m, want) {
		t.Errorf("merged %+v, want %+v", m, want)
	}
	if got := m.Addrs(); !reflect.DeepEqual(got, []string{"a:1", "b:1"}) {
		t.Errorf("Addrs = %v", got)
	}
}

func TestBucket(t *testing.T) {
	for _, tc := range []struct {
		ms   int64
		want int
	}{{0, 0}, {1, 1}, {2, 2}, {5, 5}, {6, 5}, {7, 6}, {300, 17}, {65536, 32}, {65537, 33}, {1 << 40, 33}} {
		if got := Bucket(tc.ms); got != tc.want {
			t.Errorf("Bucket(%d) = %d, want %d", tc.ms, got, tc.want)
		}
	}
}

func TestQuantile(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 {
		t.Error("empty histogram has a median")
	}
	for i := 0; i < 99; i++ {
		h[Bucket(300)]++ // (256, 362]
	}
	h[Bucket(5000)]++ // (4096, 5793]
	p50, p99, max := h.Quantile(0.5), h.Quantile(0.99), h.Quantile(1)
	if p50 < 256*time.Millisecond || p50 > 362*time.Millisecond {
		t.Errorf("p50 = %v, want within (256ms, 362ms]", p50)
	}
	if p99 != 362*time.Millisecond {
		t.Errorf("p99 = %v, want the top of 300's bucket, 362ms", p99)
	}
	if max != 5793*time.Millisecond {
		t.Errorf("p100 = %v, want 5.793s", max)
	}
	var slow Histogram
	slow[Bucket(100000)] = 3
	if got := slow.Quantile(0.5); got != 65536*time.Millisecond {
		t.Errorf("open bucket quantile = %v, want its lower bound", got)
	}
	var zero Histogram
	zero[0] = 10
	if got := zero.Quantile(0.99); got != 0 {
		t.Errorf("all 0 ms: p99 = %v", got)
	}
}

func TestParseSummary(t *testing.T) {
	s, consumed, err := ParseSummary("A\ta:1\t10\t2\t1\t1\t0:3,17:6\nA\tb:1\t1\t0\t0\t0\t-\nT\t12\t1\t0\t1234\n")
	if err != nil {
		t.Fatal(err)
	}
	if consumed != 1234 || s.Lines != 12 || s.NoUpstream != 1 {
		t.Errorf("consumed %d, stats %+v", consumed, s)
	}
	a := s.Sum("a:1")
	if a.Requests != 10 || a.Errors != 2 || a.GatewayErrors != 1 || a.Aborted != 1 || a.Latency[0] != 3 || a.Latency[17] != 6 {
		t.Errorf("a:1 = %+v", a)
	}
	for _, bad := range []string{
		"",
		"A\ta:1\t10\t2\t1\t1\t-\n",             // no total
		"A\ta:1\tx\t2\t1\t1\t-\nT\t1\t0\t0\t1", // bad count
		"A\ta:1\t1\t0\t0\t0\t99:1\nT\t1\t0\t0\t1",
		"something else\nT\t1\t0\t0\t1",
	} {
		if _, _, err := ParseSummary(bad); err == nil {
			t.Errorf("ParseSummary(%q) accepted", bad)
		}
	}
}

func TestAccessLogLine(t *testing.T) {
	if got := AccessLogLine("/var/log/nginx/access.log"); got != "access_log /var/log/nginx/access.log gantry_canary;" {
		t.Error(got)
	}
	if got := AccessLogLine("/var/log/my logs/a;b.log"); got != `access_log "/var/log/my logs/a;b.log" gantry_canary;` {
		t.Error(got)
	}
}
