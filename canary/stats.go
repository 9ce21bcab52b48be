package canary

import (
	"math"
	"sort"
	"time"
)

// BucketBounds are the inclusive upper bounds, in milliseconds, of the
// latency buckets: 0, then about √2 apart (round(2^(k/2))), up to 65536 ms.
// A response time of t ms falls in the first bucket whose bound is ≥ t;
// a last, open bucket holds everything slower. nginx measures in whole
// milliseconds, so the bounds are integers and the awk script and the Go
// code put every value in the same bucket.
var BucketBounds = [...]int64{
	0, 1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91, 128, 181, 256, 362, 512,
	724, 1024, 1448, 2048, 2896, 4096, 5793, 8192, 11585, 16384, 23170, 32768,
	46341, 65536,
}

// NumBuckets is the number of latency buckets: one per bound plus the open
// one above the last bound.
const NumBuckets = len(BucketBounds) + 1

// Histogram counts response times per bucket (see BucketBounds).
type Histogram [NumBuckets]int64

// Bucket returns the bucket of a response time of ms milliseconds.
func Bucket(ms int64) int {
	return sort.Search(len(BucketBounds), func(i int) bool { return BucketBounds[i] >= ms })
}

// Count returns the number of response times recorded.
func (h *Histogram) Count() int64 {
	var n int64
	for _, c := range h {
		n += c
	}
	return n
}

// Quantile estimates the q-quantile (0 < q ≤ 1) of the recorded response
// times: it finds the bucket holding the value of rank q·count and
// interpolates linearly within it (values of bucket i lie in
// (BucketBounds[i-1], BucketBounds[i]]). In the open bucket it returns its
// lower bound. With nothing recorded it returns 0.
func (h *Histogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	if rank < 1 {
		rank = 1
	}
	var cum float64
	for i, c := range h {
		if c == 0 {
			continue
		}
		if cum+float64(c) < rank {
			cum += float64(c)
			continue
		}
		if i == 0 {
			return 0
		}
		lo := float64(BucketBounds[i-1])
		if i == len(BucketBounds) {
			return msDuration(lo)
		}
		hi := float64(BucketBounds[i])
		return msDuration(lo + (hi-lo)*(rank-cum)/float64(c))
	}
	return msDuration(float64(BucketBounds[len(BucketBounds)-1]))
}

func msDuration(ms float64) time.Duration {
	return time.Duration(math.Round(ms * float64(time.Millisecond)))
}

// Counts are what one upstream address (or a group of them) did.
type Counts struct {
	// Requests counts attempts: a request nginx tried on two servers is
	// one request of each.
	Requests int64
	// Errors counts attempts whose upstream status was 5xx, including the
	// 502 and 504 nginx records itself when it could not connect to the
	// server, the connection broke, or the server timed out.
	Errors int64
	// GatewayErrors counts the attempts with status 502 or 504 (part of
	// Errors): connection failures and timeouts, or the server's own 502
	// or 504 — the log cannot tell them apart.
	GatewayErrors int64
	// Aborted counts attempts with no upstream status ("-"): the client
	// went away before the server answered. They count as requests but
	// neither as errors nor in the latency histogram.
	Aborted int64
	// Latency holds the response time of every attempt that has one.
	Latency Histogram
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Requests += o.Requests
	c.Errors += o.Errors
	c.GatewayErrors += o.GatewayErrors
	c.Aborted += o.Aborted
	for i := range c.Latency {
		c.Latency[i] += o.Latency[i]
	}
}

// ErrorRate is Errors/Requests (0 with no requests).
func (c Counts) ErrorRate() float64 {
	if c.Requests == 0 {
		return 0
	}
	return float64(c.Errors) / float64(c.Requests)
}

// Stats is what a stretch of access log says about each upstream address
// (host:port as nginx wrote it), plus how many lines it had. Stats merge
// by addition: several load balancers, several reads.
type Stats struct {
	// Upstreams maps an upstream address to its counts.
	Upstreams map[string]*Counts
	// Lines counts the log lines read.
	Lines int64
	// NoUpstream counts the lines of requests nginx did not proxy
	// (upstream address "-").
	NoUpstream int64
	// Skipped counts the lines that lack the fields or hold values that
	// do not parse (garbage, another format, a line cut short).
	Skipped int64
}

// NewStats returns empty Stats.
func NewStats() *Stats { return &Stats{Upstreams: map[string]*Counts{}} }

// addr returns the counts of address a, created when missing.
func (s *Stats) addr(a string) *Counts {
	if s.Upstreams == nil {
		s.Upstreams = map[string]*Counts{}
	}
	c, ok := s.Upstreams[a]
	if !ok {
		c = &Counts{}
		s.Upstreams[a] = c
	}
	return c
}

// Merge adds o to s.
func (s *Stats) Merge(o *Stats) {
	if o == nil {
		return
	}
	s.Lines += o.Lines
	s.NoUpstream += o.NoUpstream
	s.Skipped += o.Skipped
	for a, c := range o.Upstreams {
		s.addr(a).Add(*c)
	}
}

// Sum returns the counts of the given addresses added together (an
// address with no requests adds nothing): e.g. the canary hosts' or the
// baseline hosts' upstream addresses.
func (s *Stats) Sum(addrs ...string) Counts {
	var sum Counts
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			continue
		}
		seen[a] = true
		if c, ok := s.Upstreams[a]; ok {
			sum.Add(*c)
		}
	}
	return sum
}

// Addrs returns the addresses s has counts for, sorted.
func (s *Stats) Addrs() []string {
	out := make([]string, 0, len(s.Upstreams))
	for a := range s.Upstreams {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
