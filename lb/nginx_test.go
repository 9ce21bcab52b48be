package lb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/shell"
)

func TestRender(t *testing.T) {
	servers := []Server{
		{Host: "host1", Addr: "10.0.0.1:8080"},
		{Host: "host2", Addr: "10.0.0.2:8080"},
		{Host: "host3", Addr: "[fd00::3]:8080"},
	}
	tests := []struct {
		name string
		down map[string]bool
		want string
	}{
		{
			name: "all up",
			down: nil,
			want: `# Managed by gantry (service www on lb1). Do not edit: rewritten on every deploy.
server 10.0.0.1:8080; # host1
server 10.0.0.2:8080; # host2
server [fd00::3]:8080; # host3
`,
		},
		{
			name: "one down",
			down: map[string]bool{"host2": true, "host3": false},
			want: `# Managed by gantry (service www on lb1). Do not edit: rewritten on every deploy.
server 10.0.0.1:8080; # host1
server 10.0.0.2:8080 down; # host2
server [fd00::3]:8080; # host3
# down by gantry: host2
`,
		},
		{
			name: "all down",
			down: map[string]bool{"host1": true, "host2": true, "host3": true},
			want: `# Managed by gantry (service www on lb1). Do not edit: rewritten on every deploy.
server 10.0.0.1:8080 down; # host1
server 10.0.0.2:8080 down; # host2
server [fd00::3]:8080 down; # host3
# down by gantry: host1 host2 host3
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render("lb1", "www", servers, tc.down)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("Render:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestRenderRefusesUnsafeNames: whatever was checked before, no host name,
// address, service or load balancer name can add a line, a directive or a
// block to an upstream file.
func TestRenderRefusesUnsafeNames(t *testing.T) {
	good := Server{Host: "host1", Addr: "127.0.0.1:8080"}
	for _, tc := range []struct {
		name        string
		lb, service string
		server      Server
	}{
		{"newline in host", "lb1", "www", Server{Host: "h\nserver 127.0.0.9:80;", Addr: "127.0.0.2:8080"}},
		{"newline in address", "lb1", "www", Server{Host: "h", Addr: "127.0.0.2:8080;\nserver 127.0.0.9:80"}},
		{"semicolon in address", "lb1", "www", Server{Host: "h", Addr: "127.0.0.2:8080; server 127.0.0.9:80"}},
		{"brace in host", "lb1", "www", Server{Host: "h}", Addr: "127.0.0.2:8080"}},
		{"open brace in address", "lb1", "www", Server{Host: "h", Addr: "{:8080"}},
		{"hash in host", "lb1", "www", Server{Host: "h#", Addr: "127.0.0.2:8080"}},
		{"space in host", "lb1", "www", Server{Host: "web 1", Addr: "127.0.0.2:8080"}},
		{"no port", "lb1", "www", Server{Host: "h", Addr: "127.0.0.2"}},
		{"empty host", "lb1", "www", Server{Host: "", Addr: "127.0.0.2:8080"}},
		{"non-UTF-8 host", "lb1", "www", Server{Host: "h\xff", Addr: "127.0.0.2:8080"}},
		{"very long host", "lb1", "www", Server{Host: strings.Repeat("h", 1000), Addr: "127.0.0.2:8080"}},
		{"newline in service", "lb1", "www\nserver 127.0.0.9:80;", good},
		{"newline in lb name", "lb1\nserver 127.0.0.9:80;", "www", good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Render(tc.lb, tc.service, []Server{good, tc.server}, nil)
			if !errors.Is(err, ErrUnsafeName) {
				t.Fatalf("Render = %q, %v; want ErrUnsafeName", out, err)
			}
			if out != nil {
				t.Errorf("Render returned content with its error: %q", out)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not on one line", err)
			}
		})
	}
}

// TestDrainWithUnsafeServerChangesNothing: a drain whose upstream holds an
// unsafe server fails before anything runs on the load balancer.
func TestDrainWithUnsafeServerChangesNothing(t *testing.T) {
	dir := t.TempDir()
	runner := &shell.LocalRunner{}
	n := mustNew(t, Options{Name: "lb1", Runner: runner, UpstreamsDir: dir, TestCommand: "true", ReloadCommand: "true", DrainTimeout: time.Second}, Upstream{Service: "www", Servers: []Server{
		{Host: "host1", Addr: "127.0.0.1:8080"},
		{Host: "evil\nserver 127.0.0.9:80;", Addr: "127.0.0.2:8080"},
	}})
	err := n.Drain(context.Background(), "www", "host1")
	if !errors.Is(err, ErrUnsafeName) {
		t.Fatalf("Drain = %v, want ErrUnsafeName", err)
	}
	if runs := runner.Runs.Load(); runs != 0 {
		t.Errorf("%d commands ran on the load balancer, want none", runs)
	}
	if _, err := os.Stat(filepath.Join(dir, "www.conf")); !os.IsNotExist(err) {
		t.Errorf("upstream file written (stat: %v)", err)
	}
}

func TestUpstreamInNaturalHostOrder(t *testing.T) {
	dir := t.TempDir()
	pidFile, reload := fakeMaster(t, true)
	n := mustNew(t, Options{Name: "lb1", Runner: &shell.LocalRunner{}, UpstreamsDir: dir, TestCommand: "true", ReloadCommand: reload, PidFile: pidFile, DrainTimeout: time.Second}, Upstream{Service: "www", Servers: []Server{
		{Host: "host10", Addr: "127.0.0.10:8080"},
		{Host: "host2", Addr: "127.0.0.2:8080"},
		{Host: "host1", Addr: "127.0.0.1:8080"},
	}})
	if err := n.Restore(context.Background(), "www", "host2"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "www.conf"))
	if err != nil {
		t.Fatal(err)
	}
	want := header + "server 127.0.0.1:8080; # host1\nserver 127.0.0.2:8080; # host2\nserver 127.0.0.10:8080; # host10\n"
	if string(got) != want {
		t.Errorf("upstream file:\n%s\nwant:\n%s", got, want)
	}
}

const header = "# Managed by gantry (service www on lb1). Do not edit: rewritten on every deploy.\n"

// newNginx returns www's balancer on lb1 (a fake master), hosts 1 and 2 up.
func newNginx(t *testing.T, dir string) *Nginx {
	t.Helper()
	return newNginxDown(t, dir, nil, nil)
}

// newNginxDown is newNginx with the hosts down listed in down, those of
// them down by hand in byHand.
func newNginxDown(t *testing.T, dir string, down, byHand []string) *Nginx {
	t.Helper()
	pidFile, reload := fakeMaster(t, true)
	return mustNew(t, Options{
		Name:          "lb1",
		Runner:        &shell.LocalRunner{},
		UpstreamsDir:  dir,
		TestCommand:   "true",
		ReloadCommand: reload,
		PidFile:       pidFile,
		DrainTimeout:  time.Second,
	}, Upstream{Service: "www", Servers: []Server{
		{Host: "host2", Addr: "10.0.0.2:8080"},
		{Host: "host1", Addr: "10.0.0.1:8080"},
	}, Down: down, ByHand: byHand})
}

// mustNew is New, failing the test on an error.
func mustNew(t *testing.T, o Options, up Upstream) *Nginx {
	t.Helper()
	n, err := New(o, up)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading upstream file: %v", err)
	}
	return string(b)
}

func TestNginxDrainAndRestore(t *testing.T) {
	for _, sub := range []string{"upstreams", "it's got spaces/and 'quotes'", "$(touch pwned)"} {
		t.Run(sub, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, sub)
			n := newNginx(t, dir)
			file := filepath.Join(dir, "www.conf")
			ctx := context.Background()

			if err := n.Drain(ctx, "www", "host1"); err != nil {
				t.Fatalf("Drain: %v", err)
			}
			// Servers are sorted by host name, whatever order New got them in.
			if got, want := readFile(t, file), header+
				"server 10.0.0.1:8080 down; # host1\n"+
				"server 10.0.0.2:8080; # host2\n"+
				"# down by gantry: host1\n"; got != want {
				t.Errorf("after drain:\n%s\nwant:\n%s", got, want)
			}

			if err := n.Restore(ctx, "www", "host1"); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if got, want := readFile(t, file), header+
				"server 10.0.0.1:8080; # host1\n"+
				"server 10.0.0.2:8080; # host2\n"; got != want {
				t.Errorf("after restore:\n%s\nwant:\n%s", got, want)
			}
			if _, err := os.Stat(filepath.Join(dir, "www.conf.gantry-tmp")); !os.IsNotExist(err) {
				t.Errorf("temporary file left behind: %v", err)
			}
			// Nothing in the path was run as a command.
			for _, d := range []string{root, dir, "."} {
				if _, err := os.Stat(filepath.Join(d, "pwned")); err == nil {
					t.Errorf("a path in UpstreamsDir was executed by the shell (found %s/pwned)", d)
				}
			}
		})
	}
}

func TestNginxFailedConfigTestKeepsPreviousFile(t *testing.T) {
	dir := t.TempDir()
	n := newNginx(t, dir)
	file := filepath.Join(dir, "www.conf")
	ctx := context.Background()

	if err := n.Drain(ctx, "www", "host1"); err != nil {
		t.Fatalf("Drain host1: %v", err)
	}
	before := readFile(t, file)

	n.TestCommand = "echo 'nginx: [emerg] unexpected end of file' >&2; false"
	err := n.Drain(ctx, "www", "host2")
	if !errors.Is(err, ErrConfigTest) {
		t.Fatalf("Drain with a failing config test = %v, want ErrConfigTest", err)
	}
	if !strings.Contains(err.Error(), "lb1") {
		t.Errorf("error does not name the load balancer: %v", err)
	}
	if got := readFile(t, file); got != before {
		t.Errorf("upstream file after a failed test:\n%s\nwant the previous content:\n%s", got, before)
	}

	// gantry still considers host2 up: the next change does not mark it down.
	n.TestCommand = "true"
	if err := n.Restore(ctx, "www", "host1"); err != nil {
		t.Fatalf("Restore host1: %v", err)
	}
	if got, want := readFile(t, file), header+
		"server 10.0.0.1:8080; # host1\n"+
		"server 10.0.0.2:8080; # host2\n"; got != want {
		t.Errorf("after restore:\n%s\nwant:\n%s", got, want)
	}
}

func TestNginxFailedConfigTestWithoutPreviousFile(t *testing.T) {
	dir := t.TempDir()
	n := newNginx(t, dir)
	n.TestCommand = "false"
	if err := n.Drain(context.Background(), "www", "host1"); !errors.Is(err, ErrConfigTest) {
		t.Fatalf("Drain = %v, want ErrConfigTest", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "www.conf")); !os.IsNotExist(err) {
		t.Errorf("rejected upstream file left in place (stat: %v)", err)
	}
}

func TestNginxFailedReload(t *testing.T) {
	dir := t.TempDir()
	n := newNginx(t, dir)
	n.ReloadCommand = "echo 'nginx: [error] invalid PID number' >&2; exit 1"
	err := n.Drain(context.Background(), "www", "host1")
	if err == nil {
		t.Fatal("Drain succeeded with a failing reload")
	}
	if errors.Is(err, ErrConfigTest) {
		t.Errorf("a failed reload reported as a failed config test: %v", err)
	}
	if !strings.Contains(err.Error(), "invalid PID number") {
		t.Errorf("error does not carry nginx's message: %v", err)
	}
}

func TestNginxRefusesUnknownServiceOrHost(t *testing.T) {
	dir := t.TempDir()
	n := newNginx(t, dir)
	ctx := context.Background()
	tests := []struct {
		service, host, want string
	}{
		{"api", "host1", "no upstream declared for service api"},
		{"www", "host9", "host host9 is not a server of upstream www"},
	}
	for _, tc := range tests {
		err := n.Drain(ctx, tc.service, tc.host)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Drain(%s, %s) = %v, want an error containing %q", tc.service, tc.host, err, tc.want)
		}
	}
	if runs := n.Runner.(*shell.LocalRunner).Runs.Load(); runs != 0 {
		t.Errorf("refused changes still ran %d command(s) on the load balancer", runs)
	}
	if _, err := os.Stat(filepath.Join(dir, "www.conf")); !os.IsNotExist(err) {
		t.Errorf("refused change wrote the upstream file")
	}
}

// TestParseEntriesByHand: a down line that the "down by gantry" comment
// does not name was marked down by someone else.
func TestParseEntriesByHand(t *testing.T) {
	got := ParseEntries(header +
		"server 10.0.0.1:8080 down; # host1\n" +
		"server 10.0.0.2:8080 down; # host2\n" +
		"server 10.0.0.3:8080; # host3\n" +
		"# down by gantry: host1\n")
	want := map[string]Entry{
		"host1": {Addr: "10.0.0.1:8080", Down: true},
		"host2": {Addr: "10.0.0.2:8080", Down: true, ByHand: true},
		"host3": {Addr: "10.0.0.3:8080"},
	}
	for h, w := range want {
		if got[h] != w {
			t.Errorf("%s: got %+v, want %+v", h, got[h], w)
		}
	}
}

// TestParseEntriesEditedByHand: lines an operator edited are read as
// well as they can be (a note after the host's name, tabs, a down with
// no blank before the semicolon); a line with no address is not an entry
// and does not stop the reading.
func TestParseEntriesEditedByHand(t *testing.T) {
	got := ParseEntries(header +
		"server 10.0.0.1:8080 down; # host1 bad disk, ticket 42\n" +
		"server\t10.0.0.2:8080\tdown;\t# host2\r\n" +
		"server ; # host3\n" +
		"server # host4\n" +
		"  server 10.0.0.5:8080 down;# host5\n" +
		"# down by gantry: host5\n")
	want := map[string]Entry{
		"host1": {Addr: "10.0.0.1:8080", Down: true, ByHand: true},
		"host2": {Addr: "10.0.0.2:8080", Down: true, ByHand: true},
		"host5": {Addr: "10.0.0.5:8080", Down: true},
	}
	if len(got) != len(want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	for h, w := range want {
		if got[h] != w {
			t.Errorf("%s: got %+v, want %+v", h, got[h], w)
		}
	}
}

// TestKeepByHand: a host marked down by hand stays off the "down by
// gantry" line through gantry's own rewrites, until a change puts it up.
func TestKeepByHand(t *testing.T) {
	dir := t.TempDir()
	n := newNginxDown(t, dir, []string{"host2"}, []string{"host2"})
	ctx := context.Background()
	if err := n.Drain(ctx, "www", "host1"); err != nil {
		t.Fatal(err)
	}
	e := ParseEntries(readFile(t, filepath.Join(dir, "www.conf")))
	if !e["host2"].ByHand || !e["host1"].Down || e["host1"].ByHand {
		t.Errorf("after draining host1: %+v, want host2 down by hand and host1 down by gantry", e)
	}
	if err := n.Drain(ctx, "www", "host2"); err != nil {
		t.Fatal(err)
	}
	if e := ParseEntries(readFile(t, filepath.Join(dir, "www.conf"))); !e["host2"].ByHand {
		t.Errorf("a drain of a host down by hand made it gantry's: %+v", e)
	}
	if err := n.Restore(ctx, "www", "host2"); err != nil {
		t.Fatal(err)
	}
	if err := n.Drain(ctx, "www", "host2"); err != nil {
		t.Fatal(err)
	}
	if e := ParseEntries(readFile(t, filepath.Join(dir, "www.conf"))); e["host2"].ByHand || !e["host2"].Down {
		t.Errorf("restored then drained by gantry, host2 is %+v, want down by gantry", e["host2"])
	}
}

// TestNewRefusesWhatItCannotWorkWith: a balancer is built ready for its
// service's upstream, or not at all.
func TestNewRefusesWhatItCannotWorkWith(t *testing.T) {
	ok := Options{Name: "lb1", Runner: &shell.LocalRunner{}, UpstreamsDir: "/etc/nginx/gantry", TestCommand: "true", ReloadCommand: "true"}
	servers := []Server{{Host: "host1", Addr: "10.0.0.1:8080"}, {Host: "host2", Addr: "10.0.0.2:8080"}}
	for _, tc := range []struct {
		name string
		o    func(*Options)
		up   Upstream
		want string
	}{
		{"no runner", func(o *Options) { o.Runner = nil }, Upstream{Service: "www", Servers: servers}, "no runner"},
		{"no test or reload command", func(o *Options) { o.TestCommand, o.ReloadCommand = "", "" }, Upstream{Service: "www", Servers: servers}, "no test command, reload command"},
		{"no service", nil, Upstream{Servers: servers}, "no service"},
		{"host listed twice", nil, Upstream{Service: "www", Servers: append(servers, servers[0])}, `host "host1": no host, or a host listed twice`},
		{"down host not a server", nil, Upstream{Service: "www", Servers: servers, Down: []string{"host3"}}, "down host host3 is not one of its servers"},
		{"down by hand but up", nil, Upstream{Service: "www", Servers: servers, Down: []string{"host1"}, ByHand: []string{"host2"}}, "host host2, down by hand, is not down"},
		// Listed by hand at an address gantry cannot write back: refused
		// before any change, naming the file to fix.
		{"address without a port", nil, Upstream{Service: "www", Servers: []Server{{Host: "host1", Addr: "10.0.0.1"}}},
			`upstream www lists host host1 at "10.0.0.1", which gantry cannot write back (it writes ADDRESS:PORT): fix or remove that line of /etc/nginx/gantry/www.conf`},
		{"unix socket", nil, Upstream{Service: "www", Servers: []Server{{Host: "host1", Addr: "unix:/run/app.sock"}}}, "which gantry cannot write back"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			if tc.o != nil {
				tc.o(&o)
			}
			n, err := New(o, tc.up)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, %v; want an error containing %q", n, err, tc.want)
			}
		})
	}
	if _, err := New(ok, Upstream{Service: "www", Servers: servers, Down: []string{"host2"}, ByHand: []string{"host2"}}); err != nil {
		t.Errorf("New with a consistent upstream: %v", err)
	}
}
