// Command loadgen runs load through the lab's frontends until it receives
// SIGINT/SIGTERM or -max passes, then prints requests, non-2xx and failed
// request counts and the versions that answered.
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
	asJSON := flag.Bool("json", false, "print the result as JSON")
	flag.Parse()
	urls := flag.Args()
	if len(urls) == 0 {
		urls = []string{"http://127.0.0.1:8001/", "http://127.0.0.1:8002/"}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := loadgen.Run(ctx, urls, *perURL, *rate, *max)
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
