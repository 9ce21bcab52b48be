package discovery

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/discovery/ec2stub"
	"github.com/gantry-dev/gantry/internal/shell"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lb"
	"github.com/gantry-dev/gantry/lb/lbtest"
)

// injected is the server line a hostile tag tries to add to the upstream.
const injected = "server 127.0.0.9:80;"

// hostileFleet: two good instances and, each on its own, one tag (or
// address, or zone) that tries to inject a server line, a command or a path.
// Every address is on loopback. want is what the warning of each hostile
// instance must name besides its id.
func hostileFleet() (instances []ec2stub.Instance, want map[string]string) {
	good := func(id, name, ip string) ec2stub.Instance {
		return ec2stub.Instance{ID: id, Zone: "us-east-1a", PrivateIP: ip,
			Tags: map[string]string{"Name": name, "env": "staging", "gantry:services": "www"}}
	}
	instances = []ec2stub.Instance{good("i-good1", "web-1", "127.0.3.1"), good("i-good2", "web-2", "127.0.3.2")}
	want = map[string]string{}
	n := 0
	bad := func(tag, value, why string) {
		n++
		in := good("i-bad"+string(rune('a'+n)), "evil", "127.0.3.100")
		in.Tags[tag] = value
		instances = append(instances, in)
		want[in.ID] = why
	}
	bad("Name", "evil\n"+injected, "tag Name")
	bad("Name", "evil;"+injected, "tag Name")
	bad("Name", "evil{", "tag Name")
	bad("Name", "evil}", "tag Name")
	bad("Name", "../../../tmp/gantry-evil", "tag Name")
	bad("Name", "evil$(touch /tmp/gantry-evil)", "tag Name")
	bad("Name", "evil 1", "tag Name")
	bad("Name", "-rf", "tag Name")
	bad("Name", strings.Repeat("e", 10000), "tag Name")
	bad("Name", "evil\xff\xfe", "tag Name")
	bad("gantry:services", "www,www\n"+injected, "tag gantry:services")
	bad("gantry:services", "www,../../tmp/gantry-evil", "tag gantry:services")
	bad("gantry:services", "www;touch /tmp/gantry-evil", "tag gantry:services")
	bad("gantry:services", "www,"+strings.Repeat("s", 5000), "tag gantry:services")
	bad(DockerSocketTag, "/var/run/docker.sock; touch /tmp/gantry-evil", "tag "+DockerSocketTag)
	bad(DockerSocketTag, "/var/run/../../tmp/gantry-evil.sock", "tag "+DockerSocketTag)
	bad(DockerSocketTag, "relative.sock", "tag "+DockerSocketTag)

	n++
	addr := good("i-badaddr", "evil", "127.0.3.100\n"+injected)
	instances = append(instances, addr)
	want[addr.ID] = "private IP"
	zone := good("i-badzone", "evil", "127.0.3.101")
	zone.Zone = "us-east-1a\n" + injected
	instances = append(instances, zone)
	want[zone.ID] = "availability zone"
	return instances, want
}

// recorder runs commands with the local sh and records them and their
// input.
type recorder struct {
	mu    sync.Mutex
	local shell.LocalRunner
	seen  []string
}

func (r *recorder) Run(ctx context.Context, command string, stdin []byte) ([]byte, error) {
	r.mu.Lock()
	r.seen = append(r.seen, command, string(stdin))
	r.mu.Unlock()
	return r.local.Run(ctx, command, stdin)
}

// TestEC2HostileTags: an instance whose tags, address or zone could inject
// a server line, a command or a path is skipped with a warning naming its
// id and the tag, and nothing of it reaches an upstream file, a command or
// a path on the load balancer or the lock machine.
func TestEC2HostileTags(t *testing.T) {
	instances, want := hostileFleet()
	_, ts := startStub(t, instances)
	src := EC2{Region: testRegion, Filters: map[string]string{"env": "staging"}, Client: stubClient(ts)}
	hosts, warnings, err := partsOf(src.Discover(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	if got := hostNames(hosts); !reflect.DeepEqual(got, []string{"web-1", "web-2"}) {
		t.Fatalf("hosts = %q, want only web-1 and web-2", got)
	}
	if len(warnings) != len(want) {
		t.Errorf("%d warnings, want %d (one per hostile instance): %q", len(warnings), len(want), warnings)
	}
	for id, what := range want {
		found := false
		for _, w := range warnings {
			if strings.HasPrefix(w, "instance "+id+":") {
				found = true
				if !strings.Contains(w, what) || !strings.HasSuffix(w, "; skipped") {
					t.Errorf("warning %q does not name %s and say skipped", w, what)
				}
			}
		}
		if !found {
			t.Errorf("no warning for %s (%s): %q", id, what, warnings)
		}
	}
	for _, w := range warnings {
		if strings.ContainsAny(w, "\n\r") || len(w) > 400 {
			t.Errorf("warning not one short line: %q", w)
		}
	}

	// What discovery kept goes into an upstream file, commands and paths
	// on a load balancer, as a deploy does.
	dir := t.TempDir()
	r := &recorder{}
	pidFile, reload := lbtest.FakeMaster(t, true)
	servers := make([]lb.Server, len(hosts))
	for i, h := range hosts {
		servers[i] = lb.Server{Host: h.Name, Addr: config.HostPort(h.Address, 8080)}
	}
	for _, svc := range []string{"www"} {
		n, err := lb.New(lb.Options{Name: "lb1", Runner: r, UpstreamsDir: dir, TestCommand: "true", ReloadCommand: reload, PidFile: pidFile, DrainTimeout: time.Second}, lb.Upstream{Service: svc, Servers: servers})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts {
			if err := n.Drain(context.Background(), svc, h.Name); err != nil {
				t.Fatal(err)
			}
			if err := n.Restore(context.Background(), svc, h.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	upstream, err := os.ReadFile(filepath.Join(dir, "www.conf"))
	if err != nil {
		t.Fatal(err)
	}
	wantFile := "# Managed by gantry (service www on lb1). Do not edit: rewritten on every deploy.\n" +
		"server 127.0.3.1:8080; # web-1\nserver 127.0.3.2:8080; # web-2\n"
	if string(upstream) != wantFile {
		t.Errorf("upstream file:\n%s\nwant:\n%s", upstream, wantFile)
	}
	decoms := inventory.Decommissions{Runner: r, Dir: dir, Env: "staging"}
	for _, h := range hosts {
		if err := decoms.Add(context.Background(), inventory.Decommission{Host: h.Name, Who: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range r.seen {
		for _, bad := range []string{"127.0.0.9", "127.0.3.100", "127.0.3.101", "evil", "../", "\xff"} {
			if strings.Contains(s, bad) {
				t.Errorf("%q reached a command or its input: %q", bad, s)
			}
		}
	}
	// Nothing was written outside the directory.
	if _, err := os.Stat("/tmp/gantry-evil"); err == nil {
		t.Error("/tmp/gantry-evil exists")
	}
	err = filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if strings.Contains(p, "evil") {
			t.Errorf("file %s written", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
