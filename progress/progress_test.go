package progress_test

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/eventschema"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/progress"
	"github.com/gantry-dev/gantry/rollout"
)

const secret = "https://hooks.example.com/services/T000/B000/s3cr3t-t0ken"

// syncBuffer is a buffer safe for mpb's render goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testPlan() rollout.Plan {
	target := rollout.Target{Service: "www", Tag: "abc1234", Image: "reg/www:abc1234"}
	var p rollout.Plan
	p.Kind, p.Target = "deploy", target
	for i, zone := range []string{"a", "b"} {
		h := inventory.Host{Name: fmt.Sprintf("web%d", i+1), Zone: zone}
		p.Pull = append(p.Pull, h)
		p.Batches = append(p.Batches, rollout.Batch{Hosts: []rollout.HostPlan{{Host: h, To: target, From: "0ld0000"}}})
	}
	return p
}

// playRun shows a deploy in which web1 deploys and web2 fails its health
// check and is put back, with a secret in a warning and in an error.
func playRun(v *progress.View) *rollout.Report {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	v.Plan(testPlan())
	fmt.Fprintf(v.Messages(), "warning: webhook %s is slow\n", secret)
	step := func(host, name string, at int, done bool, err error) {
		v.Step(rollout.Event{Time: t0.Add(time.Duration(at) * 100 * time.Millisecond), Host: host, Step: name, Done: done, Duration: 100 * time.Millisecond, Err: err})
	}
	for _, h := range []string{"web1", "web2"} {
		step(h, "pull", 0, false, nil)
		step(h, "pull", 1, true, nil)
	}
	for i, s := range []string{"create", "drain", "stop", "start", "health", "restore", "cleanup"} {
		step("web1", s, 2+2*i, false, nil)
		step("web1", s, 3+2*i, true, nil)
	}
	for i, s := range []string{"create", "drain", "stop", "start"} {
		step("web2", s, 20+2*i, false, nil)
		step("web2", s, 21+2*i, true, nil)
	}
	step("web2", "health", 30, false, nil)
	step("web2", "health", 31, true, fmt.Errorf("%w: posting to %s failed", rollout.ErrHealthCheck, secret))
	step("web2", "revert", 32, false, nil)
	step("web2", "revert", 33, true, nil)
	step("web2", "restore", 34, false, nil)
	step("web2", "restore", 35, true, nil)
	return &rollout.Report{
		Target: testPlan().Target,
		Hosts: []*rollout.HostResult{
			{Host: "web1", Zone: "a", From: "0ld0000", To: "abc1234", Ended: "abc1234", Outcome: rollout.HostDeployed, InService: true,
				OutOfRotation: time.Second, Phases: map[string]time.Duration{"drain": 100 * time.Millisecond}},
			{Host: "web2", Zone: "b", From: "0ld0000", To: "abc1234", Ended: "0ld0000", Outcome: rollout.HostFailedReverted, InService: true,
				Err: errors.New("health: " + secret)},
		},
		Total: 4 * time.Second,
		Err:   errors.New("web2: health: " + secret),
	}
}

func TestLinesAreTimestampedWithoutEscapeCodes(t *testing.T) {
	var out bytes.Buffer
	v := progress.New(progress.Options{Out: &out, Mode: progress.Lines, Secrets: []string{secret}})
	rep := playRun(v)
	v.Finish(progress.Final{Report: rep, Err: rep.Err, ExitCode: 1})
	text := out.String()
	if strings.ContainsRune(text, '\x1b') {
		t.Errorf("plain output has escape codes:\n%q", text)
	}
	if strings.Contains(text, secret) {
		t.Errorf("plain output shows the secret:\n%s", text)
	}
	steps := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, " web") && (strings.Contains(line, " ok ") || strings.Contains(line, " FAILED ")) {
			steps++
			if _, err := time.Parse("2006-01-02T15:04:05.000Z", strings.Fields(line)[0]); err != nil {
				t.Errorf("step line without a timestamp first: %q", line)
			}
		}
	}
	// Normal verbosity: one line per ended step (2 pulls, 7 + 7 steps).
	if steps != 16 {
		t.Errorf("%d step lines, want 16:\n%s", steps, text)
	}
	for _, want := range []string{"batch 1", "warning: webhook *** is slow", "failed-reverted", "web2  b     0ld0000  abc1234  0ld0000"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func TestQuietAndVerbose(t *testing.T) {
	var quiet, verbose bytes.Buffer
	q := progress.New(progress.Options{Out: &quiet, Verbosity: progress.Quiet})
	q.Plan(testPlan())
	fmt.Fprintln(q.Messages(), "note: nothing to see")
	fmt.Fprintln(q.Messages(), "warning: something to see")
	q.Step(rollout.Event{Host: "web1", Step: "drain", Done: true})
	ok := &rollout.Report{Target: testPlan().Target, Hosts: []*rollout.HostResult{{Host: "web1", From: "0ld0000", To: "abc1234", Ended: "abc1234", Outcome: rollout.HostDeployed, InService: true}}}
	q.Finish(progress.Final{Report: ok})
	lines := strings.Split(strings.TrimSpace(quiet.String()), "\n")
	if len(lines) != 2 || lines[0] != "warning: something to see" || !strings.HasPrefix(lines[1], "succeeded: deploy of www@abc1234: 1 hosts") {
		t.Errorf("quiet output is not the warning and one result line:\n%s", quiet.String())
	}

	v := progress.New(progress.Options{Out: &verbose, Verbosity: progress.Verbose})
	rep := playRun(v)
	v.Finish(progress.Final{Report: rep, ExitCode: 1})
	if n := strings.Count(verbose.String(), " started\n"); n != 16 {
		t.Errorf("verbose output has %d step starts, want 16:\n%s", n, verbose.String())
	}
	if !strings.Contains(verbose.String(), "HOST  PULL  CREATE  DRAIN") {
		t.Errorf("verbose output lacks the per-phase table:\n%s", verbose.String())
	}
}

func TestJSONEventsMatchSchemaWithoutSecrets(t *testing.T) {
	var out bytes.Buffer
	v := progress.New(progress.Options{Out: &out, Mode: progress.JSON, Env: "staging", Secrets: []string{secret}})
	rep := playRun(v)
	v.Finish(progress.Final{Report: rep, Err: rep.Err, ExitCode: 1})
	if strings.Contains(out.String(), secret) || strings.Contains(out.String(), "s3cr3t") {
		t.Fatalf("JSON stream shows the secret:\n%s", out.String())
	}
	events, err := eventschema.ValidateStream(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, ev := range events {
		count[ev["type"].(string)]++
	}
	if count["plan"] != 1 || count["message"] != 1 || count["step"] != 32 || count["summary"] != 1 {
		t.Errorf("event counts %v, want 1 plan, 1 message, 32 steps, 1 summary", count)
	}
	last := events[len(events)-1]
	if last["type"] != "summary" || last["outcome"] != "failed" || last["exit_code"] != float64(1) || last["env"] != "staging" {
		t.Errorf("last event %v, want the summary of a failed deploy (web1 stayed on the new version) with exit code 1", last)
	}
}

func TestJSONSummaryOfARefusal(t *testing.T) {
	var out bytes.Buffer
	v := progress.New(progress.Options{Out: &out, Mode: progress.JSON, Env: "prod"})
	v.Finish(progress.Final{Err: errors.New("refused by pre-flight: host web3 unreachable"), ExitCode: 3})
	events, err := eventschema.ValidateStream(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0]["outcome"] != "refused" || events[0]["ok"] != false {
		t.Errorf("events %v, want one summary with outcome refused", events)
	}
}

func TestSchemaRejectsDrift(t *testing.T) {
	// The schema is strict enough to catch a renamed or unknown field.
	bad := `{"v":1,"type":"step","time":"2026-11-23T10:00:00Z","host":"web1","batch":1,"step":"drain","status":"done"}`
	if _, err := eventschema.ValidateStream([]byte(bad)); err == nil {
		t.Errorf("a step with status %q passed the schema", "done")
	}
	extra := `{"v":1,"type":"message","time":"2026-11-23T10:00:00Z","level":"info","text":"x","colour":"red"}`
	if _, err := eventschema.ValidateStream([]byte(extra)); err == nil {
		t.Errorf("a message with an unknown field passed the schema")
	}
}

func TestLiveViewEndsWithEachHostsOutcome(t *testing.T) {
	out := &syncBuffer{}
	v := progress.New(progress.Options{Out: out, Mode: progress.Live, Width: 100, Secrets: []string{secret}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		rep := playRun(v)
		v.Finish(progress.Final{Report: rep, ExitCode: 1})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the live view did not finish within 10s")
	}
	// Redrawing in place (escape codes) needs a terminal: the e2e tests
	// run gantry under a pseudo-terminal for that.
	text := out.String()
	for _, want := range []string{"deployed abc1234", "failed-reverted 0ld0000", "2/2 hosts", "100 %", "warning: webhook *** is slow"} {
		if !strings.Contains(text, want) {
			t.Errorf("live view lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, secret) {
		t.Errorf("live view shows the secret:\n%s", text)
	}
}

func TestLiveViewOfALargeFleetHasOneLinePerBatch(t *testing.T) {
	target := rollout.Target{Service: "www", Tag: "abc1234", Image: "reg/www:abc1234"}
	p := rollout.Plan{Kind: "deploy", Target: target}
	for b := 0; b < 5; b++ {
		var batch rollout.Batch
		for i := 0; i < 10; i++ {
			batch.Hosts = append(batch.Hosts, rollout.HostPlan{Host: inventory.Host{Name: fmt.Sprintf("web%02d", b*10+i), Zone: "a"}, To: target, From: "0ld0000"})
		}
		p.Batches = append(p.Batches, batch)
	}
	out := &syncBuffer{}
	v := progress.New(progress.Options{Out: out, Mode: progress.Live, Width: 120})
	v.Plan(p)
	for _, hp := range p.Batches[0].Hosts {
		v.Step(rollout.Event{Time: time.Now(), Host: hp.Host.Name, Step: "restore", Done: true})
	}
	v.Step(rollout.Event{Time: time.Now(), Host: "web10", Step: "drain"})
	v.Finish(progress.Final{})
	text := out.String()
	for _, want := range []string{"batch 1/5", "10 hosts: 10 in service", "batch 2/5", "1 draining, 9 waiting", "batch 5/5", "10/50 hosts"} {
		if !strings.Contains(text, want) {
			t.Errorf("live view of 50 hosts lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "100 %") {
		t.Errorf("a run that ended without a report shows the overall bar full:\n%s", text)
	}
	if regexp.MustCompile(`(?m)^web07\s+a\s+b1`).MatchString(text) {
		t.Errorf("live view of 50 hosts has a line per host:\n%s", text)
	}
}

// A host kept out (in maintenance) and a canary's bake read that failed
// are in the JSON stream as the schema says: the host's kept_out, and a
// warning message (not a command's output).
func TestJSONKeptOutHostAndFailedBakeRead(t *testing.T) {
	var out bytes.Buffer
	v := progress.New(progress.Options{Out: &out, Mode: progress.JSON, Env: "staging"})
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	v.Plan(testPlan())
	v.Step(rollout.Event{Time: t0, Host: rollout.CanaryStep, Step: "bake", Stream: "figures", Output: "could not read the figures, baking on: lb1: access log: permission denied"})
	rep := &rollout.Report{Target: testPlan().Target, Hosts: []*rollout.HostResult{
		{Host: "web1", Zone: "a", From: "0ld0000", To: "abc1234", Ended: "abc1234", Outcome: rollout.HostDeployed, KeptOut: "in maintenance: disk swap"},
	}}
	v.Finish(progress.Final{Report: rep})
	events, err := eventschema.ValidateStream(out.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	var warned, keptOut bool
	for _, ev := range events {
		switch ev["type"] {
		case "message":
			warned = ev["level"] == "warning" && strings.HasPrefix(ev["text"].(string), "warning: canary: could not read the figures")
		case "output":
			t.Errorf("a failed bake read is an output event: %v", ev)
		case "summary":
			hosts := ev["report"].(map[string]any)["hosts"].([]any)
			keptOut = hosts[0].(map[string]any)["kept_out"] == "in maintenance: disk swap"
		}
	}
	if !warned || !keptOut {
		t.Errorf("warning message %v, kept_out in the report %v; want both:\n%s", warned, keptOut, out.String())
	}
}
