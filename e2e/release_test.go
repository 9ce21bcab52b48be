package e2e

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReleaseCommand deploys with a release command (the demo app's
// `release`, which appends a line to the file in a named volume that the
// app serves at /data): it runs exactly once, on the first host, before any
// host is drained, its output streamed with the host's name; no release
// container is left. Then a failing release command (`exit 3`) stops the
// deploy with exit 3 and every host unchanged, serving, in both load
// balancers, the lock free and no release container left. The lab ends on
// the version it started on, with the default config.
func TestReleaseCommand(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	base := "www@" + l.versionOn(t, l.hosts[0])
	for _, h := range l.hosts {
		if "www@"+l.versionOn(t, h) != base {
			base = l.onBaseline(t)
			break
		}
	}
	a := l.publish(t)
	vol := fmt.Sprintf("gantry-e2e-release-%x", time.Now().UnixNano())
	withRelease := func(command string) string {
		return l.configEdits(t,
			"      HOST_NAME: \"${host.name}\"\n", "      HOST_NAME: \"${host.name}\"\n"+
				"      DATA_FILE: /data/log\n"+
				"    volumes: [\""+vol+":/data\"]\n"+
				"    release:\n      command: "+command+"\n      timeout: 30s\n",
			"    batch_size: 1\n", "    batch_size: 2\n")
	}
	t.Cleanup(func() {
		l.deployOK(t, base)
		for _, h := range l.hosts {
			if out, err := docker(h, "volume", "rm", vol); err != nil {
				t.Errorf("%s: removing volume %s: %v %s", h.Name, vol, err, out)
			}
		}
	})
	noReleaseContainer := func() {
		t.Helper()
		for _, h := range l.hosts {
			if out, _ := docker(h, "ps", "-a", "--filter", "label=dev.gantry.release", "--format", "{{.Names}}"); out != "" {
				t.Errorf("%s: release container left: %s", h.Name, out)
			}
		}
	}

	// 1. Exactly once, on host1, before any drain.
	r := l.runWith(t, withRelease("[release]"), "deploy", a, "--env", "lab")
	if r.code != 0 {
		t.Fatalf("deploy with a release command exited %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(r.stdout, "\n")
	releaseAt, drainAt := -1, -1
	outLine := regexp.MustCompile(`^\S+ host1 +release +\| ` + sha(a) + ` host1 release$`)
	drainLine := regexp.MustCompile(`^\S+ host\d+ +drain `)
	for i, line := range lines {
		if outLine.MatchString(line) && releaseAt < 0 {
			releaseAt = i
		}
		if drainLine.MatchString(line) && drainAt < 0 {
			drainAt = i
		}
	}
	if releaseAt < 0 || drainAt < 0 || releaseAt > drainAt {
		t.Errorf("release output at line %d, first drain at line %d: want the release command's output, prefixed with host1, before any drain", releaseAt, drainAt)
	}
	if !strings.Contains(r.stdout, "release command ok (exit 0) on host1") {
		t.Errorf("the report does not say the release command ran ok on host1")
	}
	for _, h := range l.hosts {
		out, err := exec.Command("curl", "-fsS", "--max-time", "5", "http://"+h.Address+":8080/data").Output()
		if err != nil {
			t.Fatalf("%s: /data: %v", h.Name, err)
		}
		runs := strings.Count(string(out), " release\n")
		want, wantData := 0, sha(a)+" "+h.Name+"\n"
		if h.Name == "host1" {
			// The release ran first, then the new version started.
			want, wantData = 1, sha(a)+" host1 release\n"+sha(a)+" host1\n"
		}
		if runs != want || string(out) != wantData {
			t.Errorf("%s: /data = %q: %d release runs, want %d (%q)", h.Name, out, runs, want, wantData)
		}
	}
	l.assertAllOn(t, a)
	noReleaseContainer()

	// 2. A failing release command: exit 3, nothing else changed. A run
	// killed mid-release left its container on host2: it is removed first.
	failing := withRelease("[exit, \"3\"]")
	h2 := l.hosts[1]
	image, err := docker(h2, "inspect", "--format", "{{.Config.Image}}", "www")
	if err != nil {
		t.Fatalf("%s: %v %s", h2.Name, err, image)
	}
	if out, err := docker(h2, "create", "--name", "www-gantry-release", "--label", "dev.gantry.managed=true", "--label", "dev.gantry.release=true",
		"--label", "dev.gantry.version="+sha(a), "--label", "dev.gantry.run-id=killed", "--network", "host", image, "release"); err != nil {
		t.Fatalf("%s: creating a leftover release container: %v %s", h2.Name, err, out)
	}
	r = l.runWith(t, failing, "plan", base, "--env", "lab")
	for _, want := range []string{"release: remove www-gantry-release on " + h2.Name + " (" + sha(a) + "), left by a run cut off mid-release\n",
		"release on host1, once, after the pull and before any drain: exit 3 (timeout 30s)\n"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("plan exited %d; want exit 0 and %q in its output", r.code, want)
		}
	}
	before := l.snapshot(t)
	r = l.runWith(t, failing, "deploy", base, "--env", "lab")
	if r.code != 3 {
		t.Errorf("deploy with a failing release command exited %d, want 3", r.code)
	}
	if !strings.Contains(r.stderr, "release command failed (exit 3) on host1; nothing else was changed") {
		t.Errorf("stderr does not say the release command failed on host1 and nothing else changed:\n%s", r.stderr)
	}
	if !regexp.MustCompile(`(?m)^\S+ host1 +release +\| exiting 3$`).MatchString(r.stdout) {
		t.Errorf("the release command's output is not shown, prefixed with host1")
	}
	if regexp.MustCompile(`(?m)^\S+ host\d+ +(drain|create|stop) `).MatchString(r.stdout) {
		t.Errorf("a host was touched after the release command failed")
	}
	l.assertUnchanged(t, before)
	l.assertAllOn(t, a)
	noReleaseContainer()
}
