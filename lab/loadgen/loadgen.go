// Package loadgen sends continuous GET requests through the lab's load
// balancer frontends and counts what users would see: responses, non-2xx
// answers and failed requests, and which version answered. It is used by
// the demo, the integration tests and the benchmark. Loops are bounded in
// time and only ever target the URLs given (loopback in the lab).
package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Result counts what the load saw.
type Result struct {
	Requests int
	Non2xx   int
	Errors   int
	// Versions counts answers by their first word (the version).
	Versions map[string]int
	// FirstErrors keeps a few failures for the message.
	FirstErrors []string
}

// String is a one-line summary.
func (r Result) String() string {
	return fmt.Sprintf("requests %d, non-2xx %d, failed %d", r.Requests, r.Non2xx, r.Errors)
}

// Run sends requests to every URL with perURL workers each until ctx ends
// or max passes, at about rate requests per second in all (0: as fast as
// possible; on a 2-core lab that starves the fleet being measured). Each worker keeps its keep-alive connection like a normal
// client; a request on an idle connection that the server closed is retried
// once by net/http itself, as any HTTP client does.
func Run(ctx context.Context, urls []string, perURL int, rate float64, max time.Duration) Result {
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	var mu sync.Mutex
	res := Result{Versions: map[string]int{}}
	var wg sync.WaitGroup
	var pause time.Duration
	if rate > 0 {
		pause = time.Duration(float64(len(urls)*perURL) / rate * float64(time.Second))
	}
	for _, u := range urls {
		for range perURL {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tr := &http.Transport{MaxIdleConnsPerHost: 1}
				defer tr.CloseIdleConnections()
				client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
				tick := time.NewTicker(max)
				if pause > 0 {
					tick.Reset(pause)
				}
				defer tick.Stop()
				for ctx.Err() == nil {
					if pause > 0 {
						select {
						case <-ctx.Done():
							return
						case <-tick.C:
						}
					}
					version, status, err := get(ctx, client, u)
					if ctx.Err() != nil && err != nil {
						return // stopped mid-request: not a failure users saw
					}
					mu.Lock()
					res.Requests++
					switch {
					case err != nil:
						res.Errors++
						if len(res.FirstErrors) < 5 {
							res.FirstErrors = append(res.FirstErrors, err.Error())
						}
					case status < 200 || status > 299:
						res.Non2xx++
						if len(res.FirstErrors) < 5 {
							res.FirstErrors = append(res.FirstErrors, fmt.Sprintf("%s: status %d", u, status))
						}
					default:
						res.Versions[version]++
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return res
}

func get(ctx context.Context, c *http.Client, url string) (version string, status int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", resp.StatusCode, err
	}
	version, _, _ = strings.Cut(strings.TrimSpace(string(body)), " ")
	return version, resp.StatusCode, nil
}
