// Command loadgen runs load through the lab's frontends until it receives
// SIGINT/SIGTERM or -max passes, then prints requests, non-2xx and failed
// request counts and the versions that answered. By default 10% of the
// requests are slow (1 to 2 s, the demo app's /slow endpoint): -slow-share,
// -slow-min and -slow-max change that (-slow-share 0: none).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/gantry-dev/gantry/lab/loadgen"
)

func main() {
	perURL := flag.Int("c", 4, "concurrent clients per URL")
	rate := flag.Float64("rate", 200, "requests per second in all (0: unlimited)")
	max := flag.Duration("max", 5*time.Minute, "stop after this long at the latest")
	slowShare := flag.Float64("slow-share", loadgen.DefaultSlow.Share, "share of slow requests, 0 to 1")
	slowMin := flag.Duration("slow-min", loadgen.DefaultSlow.Min, "shortest delay of a slow request")
	slowMax := flag.Duration("slow-max", loadgen.DefaultSlow.Max, "longest delay of a slow request")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	flag.Parse()
	urls := flag.Args()
	if len(urls) == 0 {
		urls = []string{"http://127.0.0.1:8001/", "http://127.0.0.1:8002/"}
	}
	if *slowShare < 0 || *slowShare > 1 || *slowMin < 0 || *slowMax < *slowMin {
		fmt.Fprintln(os.Stderr, "loadgen: -slow-share must be 0..1 and 0 <= -slow-min <= -slow-max")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := loadgen.RunWith(ctx, urls, loadgen.Options{
		PerURL: *perURL, Rate: *rate, Max: *max,
		Slow: loadgen.Slow{Share: *slowShare, Min: *slowMin, Max: *slowMax},
	})
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"requests": res.Requests, "non2xx": res.Non2xx, "errors": res.Errors, "versions": res.Versions})
	} else {
		vs := make([]string, 0, len(res.Versions))
		for v := range res.Versions {
			vs = append(vs, v)
		}
		sort.Strings(vs)
		fmt.Printf("load: %s\n", res)
		for _, v := range vs {
			fmt.Printf("  answered by %s: %d\n", v, res.Versions[v])
		}
		for _, e := range res.FirstErrors {
			fmt.Printf("  failure: %s\n", e)
		}
	}
	if res.Non2xx > 0 || res.Errors > 0 {
		os.Exit(1)
	}
}
