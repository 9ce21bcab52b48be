package lb

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/gantry-dev/gantry/internal/shell"
)

// benchLines is the size of the benchmark's log.
const benchLines = 1_000_000

// BenchmarkAggregateAccessLog aggregates a 1M-line access log (24
// upstreams, 1% retried, 0.5% 5xx, about 180 bytes a line) with the same
// script and awk a load balancer runs, reporting lines/s.
func BenchmarkAggregateAccessLog(b *testing.B) {
	file := filepath.Join(b.TempDir(), "access.log")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < benchLines; i++ {
		h := fmt.Sprintf("127.0.2.%d:8080", 1+rng.Intn(24))
		status, ua, us, urt := "200", h, "200", fmt.Sprintf("0.%03d", rng.Intn(40))
		switch r := rng.Intn(1000); {
		case r < 10:
			ua, us, urt = h+", 127.0.2.1:8080", "502, 200", "0.000, "+urt
		case r < 15:
			status, us = "500", "500"
		}
		fmt.Fprintf(w, `127.0.0.1 - - [29/Nov/2026:08:50:%02d +0000] "GET /items/%d HTTP/1.1" %s 20 "-" "loadgen/1.0" ua="%s" us="%s" urt="%s"`+"\n",
			i%60, rng.Intn(100000), status, ua, us, urt)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	st, _ := os.Stat(file)
	from := beginning(b, file)
	b.SetBytes(st.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lr, err := ReadAccessLog(context.Background(), &shell.LocalRunner{}, from, st.Size())
		if err != nil {
			b.Fatal(err)
		}
		if lr.Stats.Lines != benchLines || lr.Stats.Skipped != 0 {
			b.Fatalf("read %d lines, %d skipped", lr.Stats.Lines, lr.Stats.Skipped)
		}
	}
	b.ReportMetric(float64(benchLines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
