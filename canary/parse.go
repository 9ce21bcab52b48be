package canary

import (
	"bufio"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// LogFormatName is the name of the log format gantry suggests.
const LogFormatName = "gantry_canary"

// LogFormat is the format string gantry suggests for the access log of the
// service frontends: nginx's "combined" format plus the three tagged
// upstream fields, last so that nothing a client sends can be mistaken
// for them (nginx escapes '"' in the values it logs).
const LogFormat = `'$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" ua="$upstream_addr" us="$upstream_status" urt="$upstream_response_time"'`

// LogFormatLine is the log_format directive to add to nginx's http block.
const LogFormatLine = "log_format " + LogFormatName + " " + LogFormat + ";"

// Tags are the tagged fields a log format must contain, each once: the
// parser finds them anywhere in a line by these names.
var Tags = [...]string{
	`ua="$upstream_addr"`,
	`us="$upstream_status"`,
	`urt="$upstream_response_time"`,
}

// AccessLogLine is the access_log directive that writes file in LogFormat.
func AccessLogLine(file string) string {
	return "access_log " + quoteConf(file) + " " + LogFormatName + ";"
}

// quoteConf quotes s for nginx's configuration when it needs it.
func quoteConf(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\"'\\;{}#$") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Attempt is one try of a logged request on one upstream server.
type Attempt struct {
	// Addr is the server's address as nginx logged it (host:port,
	// unix:path, or the upstream group's name when no server could be
	// chosen).
	Addr string
	// Status is the server's status, 0 for "-" (no answer: the client
	// went away first).
	Status int
	// MS is the response time in whole milliseconds, -1 for "-".
	MS int64
}

// ParseLine reads the upstream attempts of one access log line. ok is
// false when the line lacks one of the tagged fields or a value does not
// parse (then the line is skipped whole, nothing of it counted); a line of
// a request that went to no upstream (ua="-") is ok with no attempts.
//
// Each tag is found at its last occurrence that starts the line or follows
// a space. The three lists are split on ", " (servers tried in turn) and
// " : " (internal redirects) and must have as many items each.
func ParseLine(line string) (attempts []Attempt, ok bool) {
	ua, ok1 := tagValue(line, "ua")
	us, ok2 := tagValue(line, "us")
	urt, ok3 := tagValue(line, "urt")
	if !ok1 || !ok2 || !ok3 {
		return nil, false
	}
	if ua == "-" {
		return nil, true
	}
	addrs, statuses, times := splitList(ua), splitList(us), splitList(urt)
	if len(addrs) != len(statuses) || len(addrs) != len(times) {
		return nil, false
	}
	attempts = make([]Attempt, len(addrs))
	for i := range addrs {
		a := Attempt{Addr: addrs[i], MS: -1}
		if a.Addr == "" || strings.ContainsAny(a.Addr, " \t") {
			return nil, false
		}
		switch s := statuses[i]; {
		case s == "-":
		case len(s) == 3 && digits(s):
			a.Status, _ = strconv.Atoi(s)
		default:
			return nil, false
		}
		switch t := times[i]; {
		case t == "-":
		case validTime(t):
			f, err := strconv.ParseFloat(t, 64)
			if err != nil {
				return nil, false
			}
			// As awk computes it: int(t*1000+0.5).
			a.MS = int64(math.Floor(f*1000 + 0.5))
		default:
			return nil, false
		}
		attempts[i] = a
	}
	return attempts, true
}

// tagValue returns the value of name="..." at its last occurrence that
// starts s or follows a space or tab.
func tagValue(s, name string) (string, bool) {
	key := name + `="`
	for end := len(s); end > 0; {
		i := strings.LastIndex(s[:end], key)
		if i < 0 {
			return "", false
		}
		if i == 0 || s[i-1] == ' ' || s[i-1] == '\t' {
			rest := s[i+len(key):]
			j := strings.IndexByte(rest, '"')
			if j < 0 {
				return "", false
			}
			return rest[:j], true
		}
		end = i
	}
	return "", false
}

// splitList splits an nginx upstream list: ", " between servers, " : "
// between the groups of internal redirects.
func splitList(s string) []string {
	return strings.Split(strings.ReplaceAll(s, " : ", ", "), ", ")
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// validTime accepts digits, optionally followed by '.' and digits (nginx
// writes seconds with three decimals).
func validTime(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	return digits(whole) && (!dot || digits(frac))
}

// AddLine counts one access log line into s.
func (s *Stats) AddLine(line string) {
	s.Lines++
	attempts, ok := ParseLine(line)
	switch {
	case !ok:
		s.Skipped++
		return
	case len(attempts) == 0:
		s.NoUpstream++
		return
	}
	for _, a := range attempts {
		c := s.addr(a.Addr)
		c.Requests++
		switch {
		case a.Status == 0:
			c.Aborted++
		case a.Status >= 500 && a.Status <= 599:
			c.Errors++
			if a.Status == 502 || a.Status == 504 {
				c.GatewayErrors++
			}
		}
		if a.Status != 0 && a.MS >= 0 {
			c.Latency[Bucket(a.MS)]++
		}
	}
}

// ParseLog counts every line of an access log text (the reference for
// what AwkProgram computes on the load balancer).
func ParseLog(text string) *Stats {
	s := NewStats()
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		s.AddLine(sc.Text())
	}
	return s
}

// ParseSummary reads what AwkProgram prints for one stretch of log: an "A"
// line per upstream address and a closing "T" line. consumed is the number
// of bytes of complete lines the script read (a last line with no newline
// yet is left for the next read).
func ParseSummary(text string) (s *Stats, consumed int64, err error) {
	s = NewStats()
	sawTotal := false
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		f := strings.Split(line, "\t")
		switch {
		case len(f) == 7 && f[0] == "A":
			var c Counts
			n, err := ints(f[2:6])
			if err != nil {
				return nil, 0, fmt.Errorf("summary line %q: %w", line, err)
			}
			c.Requests, c.Errors, c.GatewayErrors, c.Aborted = n[0], n[1], n[2], n[3]
			if f[6] != "-" {
				for _, b := range strings.Split(f[6], ",") {
					is, ns, _ := strings.Cut(b, ":")
					i, err1 := strconv.Atoi(is)
					k, err2 := strconv.ParseInt(ns, 10, 64)
					if err1 != nil || err2 != nil || i < 0 || i >= NumBuckets {
						return nil, 0, fmt.Errorf("summary line %q: bad bucket %q", line, b)
					}
					c.Latency[i] += k
				}
			}
			s.addr(f[1]).Add(c)
		case len(f) == 5 && f[0] == "T":
			n, err := ints(f[1:])
			if err != nil {
				return nil, 0, fmt.Errorf("summary line %q: %w", line, err)
			}
			s.Lines, s.NoUpstream, s.Skipped, consumed = n[0], n[1], n[2], n[3]
			sawTotal = true
		default:
			return nil, 0, fmt.Errorf("summary line %q is not one the aggregation script prints", line)
		}
	}
	if !sawTotal {
		return nil, 0, fmt.Errorf("summary has no total line (the aggregation script did not finish)")
	}
	return s, consumed, nil
}

func ints(fields []string) ([]int64, error) {
	out := make([]int64, len(fields))
	for i, f := range fields {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a count", f)
		}
		out[i] = n
	}
	return out, nil
}
