package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// promoteConfig writes a copy of the lab config whose hosts and load
// balancers are split into environments: staging (host1 and host2 behind
// lb1), production (host3 and host4 behind lb2, production: true) and
// canary (host1 alone behind lb1, to make staging run two versions). Each
// keeps its locks and history in its own directory.
func (l *lab) promoteConfig(t *testing.T) string {
	t.Helper()
	if len(l.hosts) < 4 || len(l.lbs) < 2 {
		t.Skipf("promote needs 4 hosts and 2 load balancers in the lab, it has %d and %d", len(l.hosts), len(l.lbs))
	}
	data, err := os.ReadFile(l.config)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%s: %v", l.config, err)
	}
	labEnv := cfg["environments"].(map[string]any)["lab"].(map[string]any)
	hosts := labEnv["hosts"].([]any)
	lbs := labEnv["load_balancers"].([]any)
	locks := t.TempDir()
	env := func(name string, hosts, lbs []any, production bool) map[string]any {
		e := map[string]any{}
		for k, v := range labEnv {
			e[k] = v
		}
		e["hosts"], e["load_balancers"] = hosts, lbs
		e["lock"] = map[string]any{"host": lbs[0].(map[string]any)["name"], "dir": filepath.Join(locks, name), "ttl": "1h"}
		e["production"] = production
		return e
	}
	cfg["environments"] = map[string]any{
		"staging":    env("staging", hosts[0:2], lbs[0:1], false),
		"production": env("production", hosts[2:4], lbs[1:2], true),
		"canary":     env("canary", hosts[0:1], lbs[0:1], false),
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "gantry.yml")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPromote: staging gets a new version, promote deploys exactly that
// version to production (every production host runs it and is up in
// production's load balancer, staging is untouched). Promote refuses with
// exit 3, changing nothing, when a staging container is stopped and when
// staging runs two versions. The lab is put back on its usual config and
// version at the end.
func TestPromote(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	base := l.onBaseline(t)
	cfg := l.promoteConfig(t)
	t.Cleanup(func() {
		// Back to the lab's own environment: every host on the baseline
		// and in both load balancers.
		l.deployOK(t, base)
		l.fresh(t)
		l.assertAllOn(t, base)
	})
	staging, production := l.hosts[0:2], l.hosts[2:4]
	lb2 := l.lbs[1]

	next := l.publish(t)
	if r := l.runWith(t, cfg, "deploy", next, "--env", "staging"); r.code != 0 {
		t.Fatalf("deploy %s to staging exited %d: %s", next, r.code, r.stderr)
	}
	for _, h := range production {
		if v := l.versionOn(t, h); v != sha(base) {
			t.Fatalf("%s runs %s before the promotion, want the baseline %s", h.Name, v, sha(base))
		}
	}

	t.Run("dry run", func(t *testing.T) {
		before := l.snapshot(t)
		r := l.runWith(t, cfg, "promote", "www", "--from", "staging", "--to", "production", "--dry-run")
		if r.code != 0 {
			t.Fatalf("exit %d, want 0: %s", r.code, r.stderr)
		}
		for _, want := range []string{"promoting www from staging to production", next, "dry run"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout does not say %q", want)
			}
		}
		l.assertUnchanged(t, before)
	})

	t.Run("promotes staging's version", func(t *testing.T) {
		before := l.snapshot(t)
		report := filepath.Join(t.TempDir(), "report.json")
		r := l.runWith(t, cfg, "promote", "www", "--from", "staging", "--to", "production", "--message", "e2e promote", "--report", report)
		if r.code != 0 {
			t.Fatalf("exit %d, want 0: %s", r.code, r.stderr)
		}
		if !lineWith(r.stdout, "promoting www from staging to production", next, staging[0].Name, staging[1].Name) {
			t.Errorf("stdout does not say which version it promotes (%s, from %s and %s)", next, staging[0].Name, staging[1].Name)
		}
		for _, h := range production {
			if v := l.versionOn(t, h); v != sha(next) {
				t.Errorf("%s runs %s after the promotion, want staging's %s", h.Name, v, sha(next))
			}
			out, err := docker(h, "inspect", "--format", `{{.State.Running}} {{index .Config.Labels "dev.gantry.version"}}`, "www")
			if err != nil || out != "true "+sha(next) {
				t.Errorf("%s: container www is %q (%v), want running with version %s", h.Name, out, err, sha(next))
			}
			if !lineWith(upstream(t, lb2), "server "+h.Address+":8080") || lineWith(upstream(t, lb2), h.Address, " down") {
				t.Errorf("%s is not up in production's load balancer:\n%s", h.Name, upstream(t, lb2))
			}
		}
		after := l.snapshot(t)
		for _, h := range staging {
			if before[h.Name] != after[h.Name] {
				t.Errorf("staging host %s changed during the promotion: %v -> %v", h.Name, before[h.Name], after[h.Name])
			}
		}
		if data, err := os.ReadFile(report); err != nil || !strings.Contains(string(data), sha(next)) {
			t.Errorf("--report %s does not name %s (%v):\n%s", report, sha(next), err, data)
		}
		// production's audit trail records the promotion as a deploy.
		if h := l.runWith(t, cfg, "history", "www", "--env", "production", "--json"); h.code != 0 || !lineWith(h.stdout, next) || !strings.Contains(h.stdout, "e2e promote") {
			t.Errorf("production's history (exit %d) does not record the deploy of %s with its message:\n%s%s", h.code, next, h.stdout, h.stderr)
		}
	})

	t.Run("refused when a staging container is stopped", func(t *testing.T) {
		victim := staging[1]
		if out, err := docker(victim, "stop", "www"); err != nil {
			t.Fatalf("docker stop www on %s: %v %s", victim.Name, err, out)
		}
		defer func() {
			if out, err := docker(victim, "start", "www"); err != nil {
				t.Errorf("docker start www on %s: %v %s", victim.Name, err, out)
			}
		}()
		before := l.snapshot(t)
		r := l.runWith(t, cfg, "promote", "www", "--from", "staging", "--to", "production")
		if r.code != 3 {
			t.Errorf("exit %d, want 3 (refused by pre-flight)", r.code)
		}
		if !lineWith(r.stderr, victim.Name, sha(next), "not running") {
			t.Errorf("stderr does not name the stopped host %s and its version %s:\n%s", victim.Name, sha(next), r.stderr)
		}
		l.assertUnchanged(t, before)
	})

	t.Run("refused when staging runs two versions", func(t *testing.T) {
		// The canary (host1 only) goes back to the baseline: staging now
		// runs the baseline on host1 and the new version on host2.
		if r := l.runWith(t, cfg, "deploy", base, "--env", "canary"); r.code != 0 {
			t.Fatalf("deploy %s to canary exited %d: %s", base, r.code, r.stderr)
		}
		before := l.snapshot(t)
		r := l.runWith(t, cfg, "promote", "www", "--from", "staging", "--to", "production")
		if r.code != 3 {
			t.Errorf("exit %d, want 3 (refused by pre-flight)", r.code)
		}
		for _, want := range []string{"different versions", sha(base) + " on " + staging[0].Name, sha(next) + " on " + staging[1].Name} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
			}
		}
		if strings.Contains(r.stdout, "batch") {
			t.Errorf("a plan was made although the promotion was refused:\n%s", r.stdout)
		}
		l.assertUnchanged(t, before)
		for _, h := range production {
			if v := l.versionOn(t, h); v != sha(next) {
				t.Errorf("production host %s runs %s after the refusal, want %s still", h.Name, v, sha(next))
			}
		}
	})
}
