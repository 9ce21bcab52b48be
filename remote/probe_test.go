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

	status, err := ProbeHTTP(t.Context(), conn, strings.TrimPrefix(app.URL, "http://"), "/healthz", 5*time.Second)
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
