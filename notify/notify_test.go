package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/notify"
)

var run = notify.Run{Kind: "deploy", Event: "reverted", Env: "prod", Service: "www", Version: "abc1234", Image: "reg/www:abc1234",
	Who: "ann@laptop", Hosts: []string{"web1", "web2"}, FailedHosts: []string{"web2"}, Duration: 12 * time.Second}

func TestPayloadIsSlackCompatibleWithFacts(t *testing.T) {
	data, err := json.Marshal(notify.PayloadOf(run))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Text        string `json:"text"`
		Attachments []struct {
			Color  string `json:"color"`
			Fields []struct{ Title, Value string }
		} `json:"attachments"`
		Gantry map[string]any `json:"gantry"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.Text, "www@abc1234") || !strings.Contains(got.Text, "prod") || !strings.Contains(got.Text, "web2") || !strings.Contains(got.Text, "reverted") {
		t.Errorf("text %q does not say what, where, which host and how it ended", got.Text)
	}
	if len(got.Attachments) != 1 || got.Attachments[0].Color != "warning" {
		t.Errorf("attachments %+v, want one with color warning", got.Attachments)
	}
	g := got.Gantry
	if g["event"] != "reverted" || g["service"] != "www" || g["version"] != "abc1234" || g["who"] != "ann@laptop" || g["duration_s"] != 12.0 {
		t.Errorf("gantry facts %v", g)
	}
	if f, _ := g["failed_hosts"].([]any); len(f) != 1 || f[0] != "web2" {
		t.Errorf("failed_hosts %v, want [web2]", g["failed_hosts"])
	}
}

// TestFailuresNeverShowTheURL: a webhook that answers 500, one that does
// not answer and one that hangs past its timeout are each reported by
// number and host, never by URL (it carries a token).
func TestFailuresNeverShowTheURL(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 500) }))
	defer failing.Close()
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer hanging.Close()
	defer close(release)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/services/T0/B0/tok3n-dead"
	ln.Close()

	var mu sync.Mutex
	var warnings []string
	n := &notify.Notifier{
		Webhooks: []notify.Webhook{
			notify.NewWebhook(0, failing.URL+"/services/T0/B0/tok3n-500", []string{"reverted"}, time.Second),
			notify.NewWebhook(1, dead, []string{"reverted"}, time.Second),
			notify.NewWebhook(2, hanging.URL+"/services/T0/B0/tok3n-slow", []string{"reverted"}, 200*time.Millisecond),
			notify.NewWebhook(3, failing.URL+"/not-for-this-event", []string{"started"}, time.Second),
		},
		Warn: func(s string) { mu.Lock(); warnings = append(warnings, s); mu.Unlock() },
	}
	start := time.Now()
	n.Notify(context.Background(), run)
	n.Wait()
	if time.Since(start) > 5*time.Second {
		t.Errorf("notifying took %s: timeouts not applied", time.Since(start))
	}
	if len(warnings) != 3 {
		t.Fatalf("warnings %q, want one per failing webhook (3)", warnings)
	}
	all := strings.Join(warnings, "\n")
	if strings.Contains(all, "tok3n") {
		t.Errorf("a warning shows a webhook URL:\n%s", all)
	}
	for _, want := range []string{"webhook 1 (127.0.0.1): answered 500", "webhook 2 (127.0.0.1)", "webhook 3 (127.0.0.1)"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
}

func TestHookGetsTheRunAndFailsOnNonZeroExit(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	var out bytes.Buffer
	err := notify.RunHook(context.Background(), "post_deploy", `env | grep ^GANTRY_ | sort > `+envFile+`; echo hook says hi; printf ok`, run, 10*time.Second, &out)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(envFile)
	for _, want := range []string{"GANTRY_SERVICE=www", "GANTRY_ENV=prod", "GANTRY_VERSION=abc1234", "GANTRY_HOSTS=web1 web2", "GANTRY_OUTCOME=reverted", "GANTRY_FAILED_HOSTS=web2", "GANTRY_KIND=deploy"} {
		if !strings.Contains(string(data), want+"\n") {
			t.Errorf("hook environment lacks %s:\n%s", want, data)
		}
	}
	if out.String() != "hook says hi\nok\n" { // the last line ended, so nothing runs into it
		t.Errorf("hook output %q", out.String())
	}
	if err := notify.RunHook(context.Background(), "pre_deploy", "exit 3", run, 10*time.Second, io.Discard); err == nil || !strings.Contains(err.Error(), "pre_deploy") {
		t.Errorf("a hook exiting 3 gave %v, want an error naming pre_deploy", err)
	}
	if err := notify.RunHook(context.Background(), "pre_deploy", "sleep 5", run, 100*time.Millisecond, io.Discard); err == nil || !strings.Contains(err.Error(), "within") {
		t.Errorf("a hook past its timeout gave %v, want a timeout error", err)
	}
}

func TestPayloadOfAFailedReleaseCommand(t *testing.T) {
	r := run
	r.Event, r.FailedHosts, r.Release = "failed", nil, "release command failed (exit 3) on web1"
	p := notify.PayloadOf(r)
	if want := ":x: deploy of www@abc1234 to prod stopped: release command failed (exit 3) on web1; nothing else was changed"; p.Text != want {
		t.Errorf("text %q, want %q", p.Text, want)
	}
	if p.Gantry.Release != r.Release {
		t.Errorf("gantry.release %q, want %q", p.Gantry.Release, r.Release)
	}
}
