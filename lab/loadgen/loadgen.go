// Package loadgen sends continuous GET requests through the lab's load
// balancer frontends and counts what users would see: responses, non-2xx
// answers and failed requests, and which version answered. A share of the
// requests are slow (the demo app's /slow?ms=N, 1 to 2 s by default), so a
// drained host always has requests in flight. It is used by
// the demo, the integration tests and the benchmark. Loops are bounded in
// time and only ever target the URLs given (loopback in the lab).
package loadgen

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
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
	// Non2xxBy counts the non-2xx answers by who gave them: the first two
	// words of the body ("<version> <host>" from the demo app; "nginx"
	// when the load balancer answered itself).
	Non2xxBy map[string]int
	// Non2xxFirst and Non2xxLast are when the first and last non-2xx
	// answers came.
	Non2xxFirst, Non2xxLast time.Time
}

// String is a one-line summary.
func (r Result) String() string {
	return fmt.Sprintf("requests %d, non-2xx %d, failed %d", r.Requests, r.Non2xx, r.Errors)
}

// Slow says which share of the requests are slow and how slow: each slow
// request asks the demo app's /slow endpoint for a delay drawn uniformly
// from [Min, Max]. Releases built before /slow existed answer it at once.
type Slow struct {
	// Share is the fraction of requests that are slow, 0 to 1.
	Share float64
	// Min and Max bound the delay asked for.
	Min, Max time.Duration
}

// DefaultSlow is the slow traffic every lab load carries unless told
// otherwise: 10% of requests take 1 to 2 s.
var DefaultSlow = Slow{Share: 0.1, Min: time.Second, Max: 2 * time.Second}

// maxSlowInFlight bounds the slow requests in flight at once; past it a
// worker waits for its slow request itself.
const maxSlowInFlight = 200

// Options tune a load run.
type Options struct {
	// PerURL is the number of workers per URL.
	PerURL int
	// Rate is about how many requests per second are sent in all (0: as
	// fast as possible; on a 2-core lab that starves the fleet being
	// measured).
	Rate float64
	// Max bounds the run.
	Max time.Duration
	// Slow is the share and delay of slow requests (zero Share: none).
	Slow Slow
}

// Run sends requests to every URL with perURL workers each until ctx ends
// or max passes, at about rate requests per second in all, with the
// DefaultSlow share of slow requests. See RunWith.
func Run(ctx context.Context, urls []string, perURL int, rate float64, max time.Duration) Result {
	return RunWith(ctx, urls, Options{PerURL: perURL, Rate: rate, Max: max, Slow: DefaultSlow})
}

// RunWith sends requests as opts says. Each worker keeps its keep-alive
// connection like a normal client; a request on an idle connection that the
// server closed is retried once by net/http itself, as any HTTP client does.
// A slow request runs beside its worker (on connections of its own), so
// slow requests do not lower the rate: about Rate*Share*delay of them are in
// flight at any time.
func RunWith(ctx context.Context, urls []string, opts Options) Result {
	ctx, cancel := context.WithTimeout(ctx, opts.Max)
	defer cancel()
	var mu sync.Mutex
	res := Result{Versions: map[string]int{}, Non2xxBy: map[string]int{}}
	record := func(u, version string, status int, err error) {
		if ctx.Err() != nil && err != nil {
			return // stopped mid-request: not a failure users saw
		}
		mu.Lock()
		defer mu.Unlock()
		res.Requests++
		switch {
		case err != nil:
			res.Errors++
			if len(res.FirstErrors) < 5 {
				res.FirstErrors = append(res.FirstErrors, err.Error())
			}
		case status < 200 || status > 299:
			res.Non2xx++
			res.Non2xxBy[version]++
			now := time.Now()
			if res.Non2xxFirst.IsZero() {
				res.Non2xxFirst = now
			}
			res.Non2xxLast = now
			if len(res.FirstErrors) < 5 {
				res.FirstErrors = append(res.FirstErrors, fmt.Sprintf("%s: status %d", u, status))
			}
		default:
			res.Versions[version]++
		}
	}
	slowTr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer slowTr.CloseIdleConnections()
	slowClient := &http.Client{Transport: slowTr, Timeout: 10*time.Second + opts.Slow.Max}
	slots := make(chan struct{}, maxSlowInFlight)
	var wg, slowWG sync.WaitGroup
	var pause time.Duration
	if opts.Rate > 0 {
		pause = time.Duration(float64(len(urls)*opts.PerURL) / opts.Rate * float64(time.Second))
	}
	for i, u := range urls {
		for w := range opts.PerURL {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rnd := rand.New(rand.NewPCG(uint64(i), uint64(w)))
				tr := &http.Transport{MaxIdleConnsPerHost: 1}
				defer tr.CloseIdleConnections()
				client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
				tick := time.NewTicker(opts.Max)
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
					if opts.Slow.Share > 0 && rnd.Float64() < opts.Slow.Share {
						su := slowURL(u, opts.Slow.delay(rnd))
						select {
						case slots <- struct{}{}:
							slowWG.Add(1)
							go func() {
								defer slowWG.Done()
								defer func() { <-slots }()
								version, status, err := get(ctx, slowClient, su)
								record(su, version, status, err)
							}()
						default: // too many in flight: wait for this one
							version, status, err := get(ctx, slowClient, su)
							record(su, version, status, err)
						}
						continue
					}
					version, status, err := get(ctx, client, u)
					record(u, version, status, err)
				}
			}()
		}
	}
	wg.Wait()
	slowWG.Wait()
	return res
}

// delay draws a delay from [s.Min, s.Max].
func (s Slow) delay(rnd *rand.Rand) time.Duration {
	if s.Max <= s.Min {
		return s.Min
	}
	return s.Min + time.Duration(rnd.Int64N(int64(s.Max-s.Min)+1))
}

// slowURL is base's /slow endpoint asking for delay d.
func slowURL(base string, d time.Duration) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	u.Path = "/slow"
	u.RawQuery = url.Values{"ms": {strconv.FormatInt(d.Milliseconds(), 10)}}.Encode()
	return u.String()
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
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Who failed: the demo app's "<version> <host> ..." or nginx's page.
		f := strings.Fields(string(body))
		switch {
		case strings.Contains(string(body), "<center>nginx"):
			return "nginx", resp.StatusCode, nil
		case len(f) >= 2:
			return f[0] + " " + f[1], resp.StatusCode, nil
		}
		return strings.Join(f, " "), resp.StatusCode, nil
	}
	version, _, _ = strings.Cut(strings.TrimSpace(string(body)), " ")
	return version, resp.StatusCode, nil
}
