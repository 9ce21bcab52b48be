package loadgen

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestRunWithSendsTheShareOfSlowRequests(t *testing.T) {
	var mu sync.Mutex
	var fast, slow int
	var badDelay []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if r.URL.Path == "/slow" {
			slow++
			ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
			if err != nil || ms < 10 || ms > 20 {
				badDelay = append(badDelay, r.URL.RawQuery)
			}
		} else {
			fast++
		}
		mu.Unlock()
		fmt.Fprintln(w, "v1 host1")
	}))
	defer srv.Close()

	res := RunWith(t.Context(), []string{srv.URL + "/"}, Options{
		PerURL: 2, Rate: 400, Max: time.Second,
		Slow: Slow{Share: 0.5, Min: 10 * time.Millisecond, Max: 20 * time.Millisecond},
	})
	if res.Errors+res.Non2xx != 0 {
		t.Fatalf("load failed: %s %v", res, res.FirstErrors)
	}
	mu.Lock()
	defer mu.Unlock()
	if slow == 0 || fast == 0 {
		t.Fatalf("want both slow and fast requests, got %d slow, %d fast", slow, fast)
	}
	if len(badDelay) > 0 {
		t.Fatalf("slow requests asked for delays outside [10ms, 20ms]: %v", badDelay)
	}
	if res.Versions["v1"] != res.Requests {
		t.Fatalf("versions %v, requests %d", res.Versions, res.Requests)
	}
}

func TestRunWithoutSlowShareSendsNoSlowRequest(t *testing.T) {
	var mu sync.Mutex
	slow := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			mu.Lock()
			slow++
			mu.Unlock()
		}
		fmt.Fprintln(w, "v1 host1")
	}))
	defer srv.Close()
	res := RunWith(t.Context(), []string{srv.URL + "/"}, Options{PerURL: 1, Rate: 200, Max: 300 * time.Millisecond})
	mu.Lock()
	defer mu.Unlock()
	if res.Requests == 0 || slow != 0 {
		t.Fatalf("requests %d, slow %d; want some requests and no slow one", res.Requests, slow)
	}
}
