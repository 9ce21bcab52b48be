package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestDegradeFailsTheShare: FAIL_SHARE 0.1 fails exactly one ordinary
// request in ten, and no health check.
func TestDegradeFailsTheShare(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := degrade(ok, "v1 host1", 0.1, 0)
	failed := 0
	for i := 0; i < 1000; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code == 500 {
			failed++
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		if rec.Code != 200 {
			t.Fatalf("/healthz answered %d", rec.Code)
		}
	}
	if failed != 100 {
		t.Errorf("%d of 1000 requests failed, want 100", failed)
	}
}
