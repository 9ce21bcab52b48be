package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostKeysAreVerified: an sshd whose key is missing from known_hosts,
// or differs from it, is refused with its name and the fix, and nothing on
// the fleet changes.
func TestHostKeysAreVerified(t *testing.T) {
	l := needLab(t)
	known := filepath.Join(l.state, "keys", "known_hosts")
	data, err := os.ReadFile(known)
	if err != nil {
		t.Fatal(err)
	}
	victim := l.hosts[1]
	var kept, changed []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if strings.HasPrefix(line, "["+victim.Address+"]:") {
			// Same host, someone else's key: what a man in the middle shows.
			fields := strings.Fields(line)
			other := filepath.Join(t.TempDir(), "other")
			if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v %s", err, out)
			}
			pub, _ := os.ReadFile(other + ".pub")
			changed = append(changed, fields[0]+" "+strings.Join(strings.Fields(string(pub))[:2], " "))
			continue
		}
		kept = append(kept, line)
		changed = append(changed, line)
	}
	before := l.versionOn(t, victim)
	for _, tc := range []struct {
		name, content, want string
	}{
		{"unknown host", strings.Join(kept, "\n") + "\n", "is not in"},
		{"changed key", strings.Join(changed, "\n") + "\n", "HOST KEY CHANGED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kh := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(kh, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := l.configWith(t, "known_hosts: "+known, "known_hosts: "+kh)
			r := l.runWith(t, cfg, "deploy", "www@abc1234", "--env", "lab")
			if r.code != 3 {
				t.Errorf("exit %d, want 3 (refused by pre-flight)", r.code)
			}
			for _, want := range []string{victim.Name, tc.want, "host key verification failed"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
				}
			}
			if strings.Contains(r.stdout, "batch") {
				t.Errorf("a plan was made although a host key failed:\n%s", r.stdout)
			}
		})
	}
	if after := l.versionOn(t, victim); after != before {
		t.Errorf("%s changed from %s to %s although the deploy was refused", victim.Name, before, after)
	}
}

// TestBadInputRefused: a config, flag or target the user got wrong is
// named in the error, with exit 2 (bad input), and nothing on the fleet
// changes: every host keeps its container and version and stays up in
// every load balancer. A tag missing from the registry is caught later, by
// the pre-flight checks: exit 3.
func TestBadInputRefused(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	typo := l.configWith(t, "    port: 8080", "    port: 8080\n    helth_check: /healthz")
	before := l.snapshot(t)
	for _, tc := range []struct {
		name   string
		config string
		args   []string
		code   int
		want   []string
	}{
		{"unknown key", typo, []string{"deploy", "www@abc1234", "--env", "lab"}, 2, []string{typo, "helth_check"}},
		{"missing config", filepath.Join(t.TempDir(), "nope.yml"), []string{"deploy", "www@abc1234", "--env", "lab"}, 2, []string{"nope.yml", "not found"}},
		{"mutable tag", l.config, []string{"deploy", "www@latest", "--env", "lab"}, 2, []string{"latest", "--allow-mutable-tag"}},
		{"malformed target", l.config, []string{"deploy", "www", "--env", "lab"}, 2, []string{"SERVICE@TAG"}},
		{"malformed tag", l.config, []string{"deploy", "www@not/a/tag", "--env", "lab"}, 2, []string{"www@not/a/tag", "malformed"}},
		{"unknown service", l.config, []string{"deploy", "api@abc1234", "--env", "lab"}, 2, []string{`no service "api"`, "www"}},
		{"unknown environment", l.config, []string{"deploy", "www@abc1234", "--env", "prod"}, 2, []string{`no environment "prod"`, "lab"}},
		{"unknown flag", l.config, []string{"deploy", "www@abc1234", "--env", "lab", "--batch-size", "2"}, 2, []string{"batch-size"}},
		{"bad flag value", l.config, []string{"deploy", "www@abc1234", "--env", "lab", "--on-failure", "retry"}, 2, []string{"--on-failure", "retry"}},
		{"bad duration", l.config, []string{"deploy", "www@abc1234", "--env", "lab", "--lock-wait", "soon"}, 2, []string{"soon", "lock-wait"}},
		{"missing required flag", l.config, []string{"promote", "www", "--from", "lab"}, 2, []string{`"to"`}},
		{"promote to itself", l.config, []string{"promote", "www", "--from", "lab", "--to", "lab"}, 2, []string{"--from and --to", "lab"}},
		{"tag not in registry", l.config, []string{"deploy", "www@0000000", "--env", "lab"}, 3, []string{"refused by pre-flight checks, nothing was changed", "www:0000000 not found in the registry"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := l.runWith(t, tc.config, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d", r.code, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
				}
			}
			if tc.code == 2 && strings.Contains(r.stdout, "batch 1") {
				t.Errorf("a plan was made for bad input, which should be refused before the fleet is looked at:\n%s", r.stdout)
			}
		})
	}
	l.assertUnchanged(t, before)
	for _, dir := range l.lbs {
		if prob := l.upstreamProblems(upstream(t, dir)); prob != "" {
			t.Errorf("%s: %s after refused deploys:\n%s", dir, prob, upstream(t, dir))
		}
	}
	l.assertLockFree(t)
}
