package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestContainerOptionsVolumeAndSecret deploys two versions with container
// options, a named volume and a secret from the deployer's environment:
// docker inspect shows the options, version B reads the file version A
// wrote into the volume, the secret reaches the container and appears
// nowhere in gantry's output, --json, --report, history or webhooks (it is
// even pasted into --message, which is redacted). A missing secret is a
// pre-flight error. The lab ends on the baseline with the default config.
func TestContainerOptionsVolumeAndSecret(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	// Start from what the lab runs when every host agrees (no deploy
	// needed), else from the baseline.
	base := "www@" + l.versionOn(t, l.hosts[0])
	for _, h := range l.hosts {
		if "www@"+l.versionOn(t, h) != base {
			base = l.onBaseline(t)
			break
		}
	}
	a, b := l.publish(t), l.publish(t)
	vol := fmt.Sprintf("gantry-e2e-%x", time.Now().UnixNano())
	receiver := newWebhookReceiver(t, secretToken("hook"))
	t.Setenv("E2E_WEBHOOK", receiver.url)
	const secretVar = "GANTRY_E2E_DB_PASSWORD"
	os.Unsetenv(secretVar)

	conf := l.configEdits(t,
		"      HOST_NAME: \"${host.name}\"\n", "      HOST_NAME: \"${host.name}\"\n"+
			"      DATA_FILE: /data/versions\n"+
			"      DB_PASSWORD: {from_env: "+secretVar+"}\n"+
			"    command: [--from-gantry-yml]\n"+
			"    user: \"65534:65534\"\n"+
			"    memory: 64m\n"+
			"    pids_limit: 100\n"+
			"    ulimits: {nofile: \"1024:4096\"}\n"+
			"    cap_drop: [ALL]\n"+
			"    stop_signal: SIGINT\n"+
			"    tmpfs: [\"/tmp:size=16m\"]\n"+
			"    labels: {com.example.e2e: options}\n"+
			"    extra_hosts: {db.e2e.internal: 127.0.0.9}\n"+
			"    volumes: [\""+vol+":/data\"]\n",
		"    log:\n      max_size: 10m\n", "    log:\n      driver: local\n      max_size: 5m\n",
		"    lock:\n", "    notify:\n      webhooks:\n        - url_env: E2E_WEBHOOK\n    lock:\n",
		"    batch_size: 1\n", "    batch_size: 2\n")
	t.Cleanup(func() {
		// Back to the baseline with the default config; then the volume goes.
		l.deployOK(t, base)
		for _, h := range l.hosts {
			if out, err := docker(h, "volume", "rm", vol); err != nil {
				t.Errorf("%s: removing volume %s: %v %s", h.Name, vol, err, out)
			}
		}
	})

	// Missing secret: refused before anything changes, the variable named.
	r := l.runWith(t, conf, "deploy", a, "--env", "lab")
	if r.code != 3 || !strings.Contains(r.stderr, "services.www.env.DB_PASSWORD: environment variable "+secretVar+" is not set") {
		t.Fatalf("deploy without the secret: exit %d, want 3 naming %s", r.code, secretVar)
	}
	for _, h := range l.hosts {
		if v := l.versionOn(t, h); "www@"+v != base {
			t.Fatalf("%s runs %s after a refused deploy, want %s", h.Name, v, base)
		}
	}

	secret := secretToken("e2e-db-password")
	t.Setenv(secretVar, secret)
	report := filepath.Join(t.TempDir(), "report.json")
	var shown []string // everything gantry printed or sent
	rA := l.runWith(t, conf, "deploy", a, "--env", "lab", "--message", "release with "+secret, "--report", report)
	rB := l.runWith(t, conf, "deploy", b, "--env", "lab", "--message", "release with "+secret, "--json")
	for _, r := range []result{rA, rB} {
		if r.code != 0 {
			t.Fatalf("deploy exited %d: %s", r.code, r.stderr)
		}
		shown = append(shown, r.stdout, r.stderr)
	}
	rep, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	// Not logged: the lab's history is long.
	hist, err := exec.Command(l.gantry, "--config", conf, "history", "www", "--env", "lab", "--json").CombinedOutput()
	if err != nil || !strings.Contains(string(hist), "release with ***") {
		t.Errorf("history (%v) does not show the redacted message", err)
	}
	got, text := receiver.take()
	payloads, _ := json.Marshal(got)
	if len(got) < 4 || !strings.Contains(string(payloads), "release with ***") {
		t.Errorf("webhooks got %d payloads, want 4 with the redacted message: %s", len(got), payloads)
	}
	shown = append(shown, string(rep), string(hist), string(payloads), strings.Join(text, "\n"))
	for i, s := range shown {
		if strings.Contains(s, secret) {
			t.Errorf("output %d shows the secret:\n%s", i, s)
		}
	}

	tagA, tagB := strings.TrimPrefix(a, "www@"), strings.TrimPrefix(b, "www@")
	for _, h := range l.hosts {
		out, err := exec.Command("curl", "-fsS", "--max-time", "5", "http://"+h.Address+":8080/data").Output()
		want := tagA + " " + h.Name + "\n" + tagB + " " + h.Name + "\n"
		if err != nil || !strings.HasSuffix(string(out), want) {
			t.Errorf("%s: /data = %q, %v; want it to end with A's line then B's:\n%s", h.Name, out, err, want)
		}
	}

	h := l.hosts[0]
	out, err := docker(h, "inspect", "www")
	if err != nil {
		t.Fatalf("docker inspect: %v %s", err, out)
	}
	var info []struct {
		Config struct {
			Cmd        []string
			User       string
			Env        []string
			StopSignal string
			Labels     map[string]string
		}
		HostConfig struct {
			Memory     int64
			PidsLimit  int64
			CapDrop    []string
			Tmpfs      map[string]string
			ExtraHosts []string
			Ulimits    []struct {
				Name       string
				Soft, Hard int64
			}
			LogConfig struct {
				Type   string
				Config map[string]string
			}
		}
		Mounts []struct {
			Type, Name, Destination string
		}
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info) != 1 {
		t.Fatalf("docker inspect: %v\n%s", err, out)
	}
	c := info[0]
	for _, chk := range []struct {
		what      string
		got, want any
	}{
		{"command", strings.Join(c.Config.Cmd, " "), "--from-gantry-yml"},
		{"user", c.Config.User, "65534:65534"},
		{"memory limit", c.HostConfig.Memory, int64(64 << 20)},
		{"pids limit", c.HostConfig.PidsLimit, int64(100)},
		{"log driver", c.HostConfig.LogConfig.Type, "local"},
		{"log max-size", c.HostConfig.LogConfig.Config["max-size"], "5m"},
		{"stop signal", c.Config.StopSignal, "SIGINT"},
		{"cap drop", strings.Join(c.HostConfig.CapDrop, ","), "ALL"},
		{"tmpfs", c.HostConfig.Tmpfs["/tmp"], "size=16m"},
		{"extra hosts", strings.Join(c.HostConfig.ExtraHosts, ","), "db.e2e.internal:127.0.0.9"},
		{"ulimits", fmt.Sprint(c.HostConfig.Ulimits), "[{nofile 1024 4096}]"},
		{"label", c.Config.Labels["com.example.e2e"], "options"},
		{"version label", c.Config.Labels["dev.gantry.version"], tagB},
		{"volume", fmt.Sprint(c.Mounts), "[{volume " + vol + " /data}]"},
		{"secret in the container", strings.Contains(strings.Join(c.Config.Env, "\n"), "DB_PASSWORD="+secret), true},
	} {
		if fmt.Sprint(chk.got) != fmt.Sprint(chk.want) {
			t.Errorf("docker inspect %s: %s = %v, want %v", h.Name, chk.what, chk.got, chk.want)
		}
	}
}
