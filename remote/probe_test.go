package remote

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestProbeDoesNotFollowRedirects: a health endpoint answering 302 to a
// login page that answers 200 is not healthy: the probe reports 302.
func TestProbeDoesNotFollowRedirects(t *testing.T) {
	var loginHits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/login", http.StatusFound)
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		loginHits.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	app := httptest.NewServer(mux)
	t.Cleanup(app.Close)
	if !strings.HasPrefix(app.URL, "http://127.0.0.1:") {
		t.Fatalf("app at %s, want 127.0.0.1", app.URL)
	}
	srv := startSSHServer(t)
	conn := dialTest(t, clientFiles(t, srv), srv.Addr)

	status, err := ProbeHTTP(t.Context(), conn, strings.TrimPrefix(app.URL, "http://"), "/healthz", "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusFound {
		t.Errorf("status = %d, want %d (the redirect itself)", status, http.StatusFound)
	}
	if n := loginHits.Load(); n != 0 {
		t.Errorf("the probe followed the redirect to /login %d times", n)
	}
}

// TestProbeSendsTheHostHeader: an app behind name-based virtual hosting
// answers its health check only for its own name.
func TestProbeSendsTheHostHeader(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "app.example.com" {
			w.WriteHeader(http.StatusMisdirectedRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(app.Close)
	srv := startSSHServer(t)
	conn := dialTest(t, clientFiles(t, srv), srv.Addr)
	addr := strings.TrimPrefix(app.URL, "http://")
	for host, want := range map[string]int{"app.example.com": http.StatusOK, "": http.StatusMisdirectedRequest} {
		status, err := ProbeHTTP(t.Context(), conn, addr, "/healthz", host, 5*time.Second)
		if err != nil || status != want {
			t.Errorf("Host %q: status %d (%v), want %d", host, status, err, want)
		}
	}
}
