package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/hinshun/vt10x"

	"github.com/gantry-dev/gantry/internal/eventschema"
)

// webhookReceiver records what gantry's webhooks post, on loopback.
type webhookReceiver struct {
	url  string // the secret URL: its path carries a token
	mu   sync.Mutex
	got  []map[string]any // each payload's "gantry" object
	text []string         // each payload's Slack "text"
}

func newWebhookReceiver(t *testing.T, token string) *webhookReceiver {
	t.Helper()
	w := &webhookReceiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	path := "/services/T0E2E/B0E2E/" + token
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(rw, "wrong path, method or content type", http.StatusNotFound)
			return
		}
		var p struct {
			Text   string         `json:"text"`
			Gantry map[string]any `json:"gantry"`
		}
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.got = append(w.got, p.Gantry)
		w.text = append(w.text, p.Text)
		w.mu.Unlock()
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	w.url = "http://" + ln.Addr().String() + path
	return w
}

// events returns the events received so far, in order, and resets.
func (w *webhookReceiver) take() ([]map[string]any, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	got, text := w.got, w.text
	w.got, w.text = nil, nil
	return got, text
}

func eventNames(got []map[string]any) []string {
	var names []string
	for _, g := range got {
		names = append(names, fmt.Sprint(g["event"]))
	}
	return names
}

// secretToken is a random-looking token for a secret value of a test.
func secretToken(prefix string) string {
	return fmt.Sprintf("%s-%x", prefix, time.Now().UnixNano())
}

// operatorConfig is the lab config with registry credentials, two webhooks
// (a live receiver and a dead one, both URLs secret, given through the
// environment) and hooks that append what they get to hookLog.
func (l *lab) operatorConfig(t *testing.T, receiver *webhookReceiver, deadURL, hookLog, preHook string) string {
	t.Helper()
	t.Setenv("E2E_WEBHOOK", receiver.url)
	t.Setenv("E2E_DEAD_WEBHOOK", deadURL)
	if preHook == "" {
		preHook = `echo "pre $GANTRY_KIND $GANTRY_SERVICE $GANTRY_ENV $GANTRY_VERSION $GANTRY_HOSTS" >> ` + hookLog
	}
	env := "    notify:\n      webhooks:\n        - url_env: E2E_WEBHOOK\n        - url_env: E2E_DEAD_WEBHOOK\n          timeout: 2s\n" +
		"    hooks:\n" +
		"      pre_deploy: '" + preHook + "'\n" +
		"      post_deploy: 'echo \"post $GANTRY_OUTCOME [$GANTRY_FAILED_HOSTS]\" >> " + hookLog + "'\n" +
		"    lock:\n"
	return l.configEdits(t,
		"  address: 127.0.0.1:5000\n", "  address: 127.0.0.1:5000\n  username: e2e-deployer\n  password_env: E2E_REGISTRY_PASSWORD\n",
		"    lock:\n", env)
}

// deadWebhook is a loopback URL nothing listens on.
func deadWebhook(t *testing.T, token string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/services/dead/" + token
}

// TestJSONEventsWebhooksAndHooks: a deploy with --json prints events that
// match the documented schema and never show the registry password or a
// webhook URL; the webhook receiver hears start and success, then start
// and revert for a broken version, with service, version, who, duration
// and failed hosts; a dead webhook changes no exit code; hooks run before
// and after with the run in their environment.
func TestJSONEventsWebhooksAndHooks(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v1 := l.onBaseline(t)
	v2 := l.publish(t)
	broken := l.publish(t, "--broken")

	password := secretToken("regpw")
	t.Setenv("E2E_REGISTRY_PASSWORD", password)
	receiver := newWebhookReceiver(t, secretToken("hooktoken"))
	dead := deadWebhook(t, secretToken("deadtoken"))
	hookLog := filepath.Join(t.TempDir(), "hooks.log")
	cfg := l.operatorConfig(t, receiver, dead, hookLog, "")
	secrets := []string{password, receiver.url, dead, "hooktoken", "deadtoken", "regpw-"}
	assertNoSecrets := func(r result) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Errorf("output shows the secret %q", s)
			}
		}
	}

	load := startLoad()
	r := l.runWith(t, cfg, "deploy", v2, "--env", "lab", "--json")
	assertNoFailedRequests(t, load())
	if r.code != 0 {
		t.Fatalf("deploy exit %d, want 0 (a dead webhook must not fail the deploy)", r.code)
	}
	assertNoSecrets(r)
	events, err := eventschema.ValidateStream([]byte(r.stdout))
	if err != nil {
		t.Fatalf("the event stream does not match docs/events.md: %v", err)
	}
	steps := map[string]map[string]bool{} // host -> steps ended ok
	var plans, summaries int
	var deadWarned bool
	for _, ev := range events {
		switch ev["type"] {
		case "plan":
			plans++
		case "summary":
			summaries++
		case "message":
			text := fmt.Sprint(ev["text"])
			deadWarned = deadWarned || (ev["level"] == "warning" && strings.Contains(text, "webhook 2 (127.0.0.1)") && strings.Contains(text, "not delivered"))
		case "step":
			if ev["status"] == "ok" {
				h := fmt.Sprint(ev["host"])
				if steps[h] == nil {
					steps[h] = map[string]bool{}
				}
				steps[h][fmt.Sprint(ev["step"])] = true
			}
		}
	}
	if plans != 1 || summaries != 1 || events[len(events)-1]["type"] != "summary" {
		t.Errorf("%d plan and %d summary events (summary last: %v), want one each, the summary last", plans, summaries, events[len(events)-1]["type"])
	}
	for _, h := range l.hosts {
		for _, s := range []string{"pull", "create", "drain", "stop", "start", "health", "restore"} {
			if !steps[h.Name][s] {
				t.Errorf("no %s step event ended ok for %s", s, h.Name)
			}
		}
	}
	if !deadWarned {
		t.Errorf("no warning event says webhook 2 (the dead one) was not delivered")
	}
	sum := events[len(events)-1]
	rep, _ := sum["report"].(map[string]any)
	if sum["ok"] != true || sum["outcome"] != "succeeded" || sum["exit_code"] != 0.0 || rep == nil || rep["version"] != sha(v2) {
		t.Errorf("summary %v, want ok, succeeded, exit 0, version %s", sum, sha(v2))
	}
	got, text := receiver.take()
	if names := eventNames(got); strings.Join(names, ",") != "started,succeeded" {
		t.Fatalf("webhook received %v, want started then succeeded", names)
	}
	for i, g := range got {
		hosts, _ := g["hosts"].([]any)
		if g["service"] != "www" || g["version"] != sha(v2) || g["env"] != "lab" || g["kind"] != "deploy" || g["who"] == "" || len(hosts) != len(l.hosts) {
			t.Errorf("webhook %s payload %v: want service www, version %s, env lab, kind deploy, who, %d hosts", g["event"], g, sha(v2), len(l.hosts))
		}
		if !strings.Contains(text[i], "www@"+sha(v2)) {
			t.Errorf("Slack text %q does not name www@%s", text[i], sha(v2))
		}
	}
	if d, _ := got[1]["duration_s"].(float64); d <= 0 {
		t.Errorf("success payload duration_s %v, want > 0", got[1]["duration_s"])
	}
	if f, _ := got[1]["failed_hosts"].([]any); len(f) != 0 {
		t.Errorf("success payload failed_hosts %v, want none", f)
	}

	// A broken version: start, then revert, naming the failed host.
	r = l.runWith(t, cfg, "deploy", broken, "--env", "lab", "--json")
	if r.code != 1 {
		t.Errorf("broken deploy exit %d, want 1 (failed, reverted)", r.code)
	}
	assertNoSecrets(r)
	events, err = eventschema.ValidateStream([]byte(r.stdout))
	if err != nil {
		t.Fatalf("the event stream of the broken deploy does not match the schema: %v", err)
	}
	if sum := events[len(events)-1]; sum["outcome"] != "reverted" || sum["exit_code"] != 1.0 {
		t.Errorf("summary %v, want outcome reverted, exit code 1", sum)
	}
	got, text = receiver.take()
	if names := eventNames(got); strings.Join(names, ",") != "started,reverted" {
		t.Fatalf("webhook received %v for the broken version, want started then reverted", names)
	}
	failed, _ := got[1]["failed_hosts"].([]any)
	if len(failed) != 1 || failed[0] != l.hosts[0].Name || got[1]["version"] != sha(broken) || !strings.Contains(text[1], l.hosts[0].Name) {
		t.Errorf("revert payload %v (text %q), want version %s and failed_hosts [%s]", got[1], text[1], sha(broken), l.hosts[0].Name)
	}

	log, _ := os.ReadFile(hookLog)
	wantLog := fmt.Sprintf("pre deploy www lab %s host1 host2 host3 host4\npost succeeded []\npre deploy www lab %s host1 host2 host3 host4\npost reverted [%s]\n", sha(v2), sha(broken), l.hosts[0].Name)
	if string(log) != wantLog {
		t.Errorf("hooks wrote:\n%s\nwant:\n%s", log, wantLog)
	}
	l.assertAllOn(t, v2)
	_ = v1
}

// TestFailingPreHookChangesNothing: a pre_deploy hook that fails stops the
// deploy before anything changes (exit 3), and no webhook hears of a start.
func TestFailingPreHookChangesNothing(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v1 := l.onBaseline(t)
	v2 := l.publish(t)
	t.Setenv("E2E_REGISTRY_PASSWORD", secretToken("regpw"))
	receiver := newWebhookReceiver(t, secretToken("hooktoken"))
	// The hook's command names the webhook URL (a secret): the error that
	// quotes the command must not show it.
	cfg := l.operatorConfig(t, receiver, deadWebhook(t, "x"), filepath.Join(t.TempDir(), "log"), `echo smoke tests failed; exit 7; curl -d x `+receiver.url)
	before := l.snapshot(t)
	w := l.watchDrains()
	r := l.runWith(t, cfg, "deploy", v2, "--env", "lab")
	w.assertNeverDrained(t)
	if r.code != 3 {
		t.Errorf("exit %d, want 3 (refused before any change)", r.code)
	}
	if !strings.Contains(r.stderr, "pre_deploy") || !strings.Contains(r.stderr, "nothing was changed") || !strings.Contains(r.stdout, "smoke tests failed") {
		t.Errorf("output does not show the hook's output and name the failing pre_deploy hook:\n%s%s", r.stdout, r.stderr)
	}
	if got, _ := receiver.take(); len(got) != 0 {
		t.Errorf("webhook received %v although the deploy never started", eventNames(got))
	}
	if strings.Contains(r.stdout+r.stderr, receiver.url) || !strings.Contains(r.stderr, "***") {
		t.Errorf("the failing hook's error shows the webhook URL instead of ***:\n%s", r.stderr)
	}

	// Refused before the run's view exists (a bad flag value): the --json
	// stream is still one summary event, and nothing else is on stdout.
	r = l.runWith(t, cfg, "deploy", v2, "--env", "lab", "--lock-wait", "soon", "--json")
	events, err := eventschema.ValidateStream([]byte(r.stdout))
	if err != nil || r.code != 2 || len(events) != 1 || events[0]["outcome"] != "refused" || events[0]["exit_code"] != 2.0 {
		t.Errorf("a bad flag with --json: exit %d, events %v (%v); want exit 2 and one summary event, refused", r.code, events, err)
	}
	l.assertUnchanged(t, before)
	l.assertAllOn(t, v1)
}

// TestOutputOnATerminalAndOff: under a pseudo-terminal, deploy draws the
// live view (redrawn in place) and ends with each host's outcome and the
// overall bar full; with stdout a pipe, every line is plain and each step
// line starts with a timestamp; --quiet prints one line.
func TestOutputOnATerminalAndOff(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	l.onBaseline(t)
	v2 := l.publish(t)
	v3 := l.publish(t)

	cmd := exec.Command(l.gantry, "--config", l.config, "deploy", v2, "--env", "lab")
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 120, Rows: 50})
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&raw, ptmx); close(copied) }() // ends with EIO when gantry exits
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err = <-waitErr:
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("gantry under a terminal did not end within 3 minutes")
	}
	<-copied
	ptmx.Close()
	if err != nil {
		t.Fatalf("deploy under a terminal: %v\n%s", err, raw.String())
	}
	if !bytes.Contains(raw.Bytes(), []byte("\x1b[")) {
		t.Errorf("no escape codes: the live view was not drawn on the terminal:\n%q", raw.String())
	}
	screen := vt10x.New(vt10x.WithSize(120, 50))
	_, _ = screen.Write(raw.Bytes())
	final := screen.String()
	t.Logf("final screen:\n%s", final)
	for _, h := range l.hosts {
		if !regexp.MustCompile(`(?m)^` + h.Name + `\s.*\[=+\]\s.*deployed ` + sha(v2)).MatchString(final) {
			t.Errorf("the final screen has no full line for %s ending deployed %s", h.Name, sha(v2))
		}
	}
	if !regexp.MustCompile(`(?m)^overall\s+4/4 hosts\s+\[=+\]\s+100 %.*done`).MatchString(final) {
		t.Errorf("the final screen has no full overall bar with 4/4 hosts done")
	}
	if !lineWith(final, "pull", "total", "out of rotation per host") {
		t.Errorf("the final screen has no summary below the live view")
	}
	l.assertAllOn(t, v2)

	// Not a terminal: plain lines, each step with a timestamp.
	r := l.run(t, "deploy", v3, "--env", "lab")
	if r.code != 0 {
		t.Fatalf("deploy exit %d", r.code)
	}
	if strings.ContainsRune(r.stdout+r.stderr, '\x1b') {
		t.Errorf("output to a pipe has escape codes:\n%q", r.stdout)
	}
	stepLine := regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (host\d)\s+(\w+)\s+(ok|FAILED)\s`)
	ends := 0
	for _, line := range strings.Split(r.stdout, "\n") {
		if m := stepLine.FindStringSubmatch(line); m != nil {
			ends++
			if ts, err := time.Parse("2006-01-02T15:04:05.000Z", m[1]); err != nil || time.Since(ts) > 10*time.Minute || time.Since(ts) < 0 {
				t.Errorf("step line %q: timestamp %q is not now", line, m[1])
			}
		}
	}
	if ends < 7*len(l.hosts) {
		t.Errorf("%d timestamped step lines, want at least %d (7 steps per host):\n%s", ends, 7*len(l.hosts), r.stdout)
	}

	r = l.run(t, "deploy", v3, "--env", "lab", "--quiet")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); r.code != 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "succeeded: deploy of www@"+sha(v3)) {
		t.Errorf("--quiet printed %d lines (exit %d), want one result line:\n%s", len(lines), r.code, r.stdout)
	}
	l.assertAllOn(t, v3)
}

// TestRevertFailedExitCode5: when putting a host back fails (lb2's nginx
// config breaks while the host is out of rotation), gantry exits 5, the
// report and the JSON summary say which host is out of which balancer.
func TestRevertFailedExitCode5(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v1 := l.onBaseline(t)
	v2 := l.publish(t)
	lbs := l.loadBalancers(t)
	conf := filepath.Join(filepath.Dir(lbs[1].Dir), "nginx.conf")
	orig, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	restoreConf := func() {
		if err := os.WriteFile(conf, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		restoreConf()
		l.fresh(t) // every host back into every balancer
		l.deployOK(t, v1)
	})

	run := l.start(t, l.config, "deploy", v2, "--env", "lab", "--json")
	first := l.hosts[0].Name
	stopping := regexp.MustCompile(`"host":"` + first + `".*"step":"stop","status":"started"`)
	if _, ok := run.waitLine(stopping, 2*time.Minute); !ok {
		run.wait(time.Minute)
		t.Fatalf("never saw %s's stop step start", first)
	}
	// first is drained now: break lb2's config so it cannot be put back there.
	if err := os.WriteFile(conf, append(append([]byte{}, orig...), []byte("\nthis_is_not_a_directive;\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run.wait(3 * time.Minute)
	restoreConf()
	if r.code != 5 {
		t.Errorf("exit %d, want 5 (putting a host back failed)", r.code)
	}
	if !strings.Contains(r.stderr, "putting hosts back failed") {
		t.Errorf("stderr does not say putting hosts back failed:\n%s", r.stderr)
	}
	var last map[string]any
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if last["outcome"] != "revert-failed" || last["exit_code"] != 5.0 {
		t.Errorf("summary %v, want outcome revert-failed and exit code 5", last)
	}
	rep, _ := last["report"].(map[string]any)
	hosts, _ := rep["hosts"].([]any)
	found := false
	for _, h := range hosts {
		h := h.(map[string]any)
		if h["host"] == first {
			found = true
			if h["in_service"] != false || !strings.Contains(fmt.Sprint(h["error"]), "lb2") {
				t.Errorf("%s in the report: %v; want in_service false and an error naming lb2", first, h)
			}
		}
	}
	if !found {
		t.Errorf("the report has no entry for %s", first)
	}
	// It is really out of lb2 and still in lb1.
	if !lineWith(upstream(t, lbs[1].Dir), l.hosts[0].Address, "down") {
		t.Errorf("%s is not marked down in lb2:\n%s", first, upstream(t, lbs[1].Dir))
	}
	if lineWith(upstream(t, lbs[0].Dir), l.hosts[0].Address, "down") {
		t.Errorf("%s is marked down in lb1:\n%s", first, upstream(t, lbs[0].Dir))
	}
}
