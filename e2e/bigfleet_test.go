package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/lab/loadgen"
)

// bigFleetHosts is the fleet size the large-fleet tests need: `make test`
// starts the lab with LAB_HOSTS=24.
const bigFleetHosts = 24

// bigFrontends are the load balancers' frontends of service big.
var bigFrontends = []string{"http://127.0.0.1:8101/", "http://127.0.0.1:8102/"}

// bigFleet is environment big of lab/gantry-big.yml: service big on port
// 9080 on every lab host, behind both load balancers, batches of half the
// fleet. Stock sshd limits everywhere (MaxSessions 10, MaxStartups 10).
type bigFleet struct {
	l      *lab
	config string
	hosts  []labHost
}

func needBigFleet(t *testing.T) *bigFleet {
	t.Helper()
	l := needLab(t)
	b := &bigFleet{l: l, config: filepath.Join(filepath.Dir(l.config), "gantry-big.yml")}
	sub := &lab{config: b.config}
	err := sub.loadEnv("big")
	if err == nil && len(sub.hosts) < bigFleetHosts {
		err = fmt.Errorf("%s has %d hosts, want %d: start the lab with LAB_HOSTS=%d (as `make test` does)", b.config, len(sub.hosts), bigFleetHosts, bigFleetHosts)
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the large-fleet lab is not up: %v", err)
		}
		t.Skipf("the large-fleet lab is not up: %v", err)
	}
	b.hosts = sub.hosts
	return b
}

func (b *bigFleet) run(t *testing.T, config string, args ...string) result {
	t.Helper()
	return b.l.runWith(t, config, append(args, "--env", "big")...)
}

// underLoad runs gantry while 200 requests/s (10% of them slow, 1-2 s) go
// through both big frontends, and returns the run and what the load saw.
func (b *bigFleet) underLoad(t *testing.T, config string, args ...string) (result, loadgen.Result) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan loadgen.Result, 1)
	go func() { done <- loadgen.Run(ctx, bigFrontends, 4, 200, 5*time.Minute) }()
	time.Sleep(500 * time.Millisecond) // load is flowing before gantry starts
	r := b.run(t, config, args...)
	time.Sleep(500 * time.Millisecond)
	stop()
	return r, <-done
}

// assertOn checks the end state users care about: every host answers with
// want on its own address, is up in service big's upstream of both load
// balancers, runs exactly one big container, and the lock is free.
func (b *bigFleet) assertOn(t *testing.T, want string) {
	t.Helper()
	for _, h := range b.hosts {
		out, err := exec.Command("curl", "-fsS", "--max-time", "5", "http://"+h.Address+":9080/").Output()
		if v, _, _ := strings.Cut(strings.TrimSpace(string(out)), " "); err != nil || v != sha(want) {
			t.Errorf("%s answers %q (%v), want %s", h.Name, v, err, sha(want))
		}
		if out, err := docker(h, "ps", "-a", "--filter", "label=dev.gantry.service=big", "--format", "{{.Names}} {{.State}}"); err != nil || out != "big running" {
			t.Errorf("%s: containers of big = %q (%v), want exactly \"big running\"", h.Name, out, err)
		}
	}
	for _, dir := range b.l.lbs {
		data, err := os.ReadFile(filepath.Join(dir, "big.conf"))
		if err != nil {
			t.Fatalf("reading big's upstream: %v", err)
		}
		if bytes.Contains(data, []byte(" down;")) {
			t.Errorf("%s/big.conf has a host down:\n%s", dir, data)
		}
		for _, h := range b.hosts {
			if !bytes.Contains(data, []byte("server "+h.Address+":9080; # "+h.Name+"\n")) {
				t.Errorf("%s/big.conf does not have %s up:\n%s", dir, h.Name, data)
			}
		}
	}
	if r := b.l.quietWith(b.config, "lock", "status", "big", "--env", "big"); r.code != 0 || !strings.Contains(r.stdout, "free") {
		t.Errorf("`gantry lock status big --env big` exited %d, want 0 with \"free\":\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// assertBatches checks the plan gantry printed: every host once, batches
// of at most half the fleet (12), never a whole zone at once.
func (b *bigFleet) assertBatches(t *testing.T, out string) {
	t.Helper()
	batches := parsePlan(out)
	n := 0
	for i, batch := range batches {
		n += len(batch)
		zones := map[string]int{}
		for _, h := range batch {
			zones[h.zone]++
		}
		if len(batch) > len(b.hosts)/2 || zones["a"] == len(b.hosts)/2 || zones["b"] == len(b.hosts)/2 {
			t.Errorf("batch %d has %d hosts (zones %v): at most half the fleet, never a whole zone", i+1, len(batch), zones)
		}
	}
	if n != len(b.hosts) {
		t.Errorf("the plan moves %d hosts in %d batches, want all %d:\n%s", n, len(batches), len(b.hosts), out)
	}
}

// TestBigFleet deploys to 24 hosts in two zones, 12 at a time, under load,
// then rolls all 24 back with --emergency, then deploys again through the
// bastion: stock sshd limits on every host, load balancer and the
// bastion, and not one failed request.
func TestBigFleet(t *testing.T) {
	b := needBigFleet(t)
	v1 := b.l.publish(t)
	v2 := b.l.publish(t)
	big := func(v string) string { return "big@" + sha(v) }
	if r := b.run(t, b.config, "deploy", big(v1)); r.code != 0 {
		t.Fatalf("deploying the baseline %s to the big fleet exited %d", v1, r.code)
	}

	t.Run("deploy", func(t *testing.T) {
		r, load := b.underLoad(t, b.config, "deploy", big(v2))
		if r.code != 0 {
			t.Fatalf("deploy %s exited %d", v2, r.code)
		}
		assertNoFailedRequests(t, load)
		b.assertBatches(t, r.stdout)
		b.assertOn(t, v2)
	})

	t.Run("emergency rollback", func(t *testing.T) {
		r, load := b.underLoad(t, b.config, "rollback", "big", "--emergency")
		if r.code != 0 {
			t.Fatalf("rollback --emergency exited %d", r.code)
		}
		assertNoFailedRequests(t, load)
		b.assertBatches(t, r.stdout)
		b.assertOn(t, v1)
	})

	t.Run("deploy through the bastion", func(t *testing.T) {
		data, err := os.ReadFile(b.config)
		if err != nil {
			t.Fatal(err)
		}
		viaBastion := filepath.Join(t.TempDir(), "gantry-big.yml")
		edited := bytes.Replace(data, []byte("  connect_timeout: 5s\n"), []byte("  connect_timeout: 5s\n  jump_host: root@127.0.4.1:2222\n"), 1)
		if bytes.Equal(edited, data) {
			t.Fatalf("%s has no connect_timeout line to add the jump host after", b.config)
		}
		if err := os.WriteFile(viaBastion, edited, 0o600); err != nil {
			t.Fatal(err)
		}
		r, load := b.underLoad(t, viaBastion, "deploy", big(v2))
		if r.code != 0 {
			t.Fatalf("deploy %s through the bastion exited %d", v2, r.code)
		}
		assertNoFailedRequests(t, load)
		b.assertOn(t, v2)
	})
}
