package progress_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/eventschema"
	"github.com/gantry-dev/gantry/progress"
	"github.com/gantry-dev/gantry/rollout"
)

// playRelease shows a plan with a release step and the release command's
// run on web1, whose output has a secret in it.
func playRelease(v *progress.View) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	p := testPlan()
	p.Release = &rollout.Release{Command: []string{"/app", "migrate"}, Timeout: 10 * time.Minute, Host: p.Pull[0]}
	v.Plan(p)
	v.Step(rollout.Event{Time: t0, Host: "web1", Step: "release"})
	v.Step(rollout.Event{Time: t0, Host: "web1", Step: "release", Stream: "stdout", Output: "migrating with " + secret})
	v.Step(rollout.Event{Time: t0, Host: "web1", Step: "release", Stream: "stderr", Output: ""})
	v.Step(rollout.Event{Time: t0.Add(time.Second), Host: "web1", Step: "release", Done: true, Duration: time.Second, Detail: "exit 0"})
}

func TestReleaseOutputLines(t *testing.T) {
	for _, verbosity := range []progress.Verbosity{progress.Quiet, progress.Normal} {
		var out bytes.Buffer
		v := progress.New(progress.Options{Out: &out, Env: "staging", Verbosity: verbosity, Secrets: []string{secret}})
		playRelease(v)
		got := out.String()
		if strings.Contains(got, "s3cr3t") {
			t.Fatalf("output shows the secret:\n%s", got)
		}
		if want := "2026-11-23T10:00:00.000Z web1       release  | migrating with ***\n"; !strings.Contains(got, want) {
			t.Errorf("verbosity %d: output lacks %q:\n%s", verbosity, want, got)
		}
		if verbosity == progress.Normal && !strings.Contains(got, "release on web1, once, after the pull and before any drain: /app migrate (timeout 10m0s)\n") {
			t.Errorf("the plan does not show the release step:\n%s", got)
		}
	}
}

func TestReleaseJSONEvents(t *testing.T) {
	var out bytes.Buffer
	v := progress.New(progress.Options{Out: &out, Mode: progress.JSON, Env: "staging", Secrets: []string{secret}})
	playRelease(v)
	v.Finish(progress.Final{ExitCode: 0})
	if strings.Contains(out.String(), "s3cr3t") {
		t.Fatalf("JSON stream shows the secret:\n%s", out.String())
	}
	events, err := eventschema.ValidateStream(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var outputs []string
	for _, ev := range events {
		switch ev["type"] {
		case "plan":
			r, _ := ev["release"].(map[string]any)
			if r == nil || r["host"] != "web1" || r["timeout_s"] != 600.0 {
				t.Errorf("plan event release = %v, want web1 with a 600 s timeout", ev["release"])
			}
		case "output":
			outputs = append(outputs, ev["host"].(string)+" "+ev["step"].(string)+" "+ev["stream"].(string)+": "+ev["text"].(string))
		}
	}
	if got, want := strings.Join(outputs, "\n"), "web1 release stdout: migrating with ***\nweb1 release stderr: "; got != want {
		t.Errorf("output events:\n%s\nwant:\n%s", got, want)
	}
}
