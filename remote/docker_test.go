package remote

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/docker/docker/api/types/container"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/inventory"
)

// fakeDaemon is a Docker API stand-in on a unix socket, holding one
// container, for the logic of non-idempotent calls across a redial. It can
// cut the SSH connection the request came through, either before acting
// on a request or after.
type fakeDaemon struct {
	srv *sshServer

	mu        sync.Mutex
	container map[string]any // nil: no container
	creates   int            // creates that took effect
	renames   int
	// cut says, per operation ("create", "rename"), whether the next one
	// cuts the SSH connection "before" or "after" acting.
	cut map[string]string
	// frozen makes every call but ping hang (a stopped dockerd); a pull
	// sends one progress line first.
	frozen chan struct{}
	// images answers GET /images/json.
	images []map[string]any
}

func (f *fakeDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := r.URL.Path
	if i := strings.Index(path[1:], "/"); strings.HasPrefix(path, "/v1.") && i > 0 {
		path = path[i+1:]
	}
	w.Header().Set("Api-Version", "1.47")
	w.Header().Set("Content-Type", "application/json")
	if f.frozen != nil && path != "/_ping" {
		if path == "/images/create" {
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(`{"status":"Pulling from www"}` + "\n"))
			w.(http.Flusher).Flush()
		}
		f.mu.Unlock()
		select {
		case <-f.frozen:
		case <-r.Context().Done():
		}
		f.mu.Lock()
		return
	}
	switch {
	case path == "/_ping":
		w.Write([]byte("OK"))
	case path == "/images/json" && r.Method == http.MethodGet:
		json.NewEncoder(w).Encode(f.images)
	case path == "/containers/create" && r.Method == http.MethodPost:
		if f.cutNow("create", "before") {
			return
		}
		var body struct {
			Image  string
			Labels map[string]string
		}
		json.NewDecoder(r.Body).Decode(&body)
		f.creates++
		f.container = map[string]any{
			"Id": "c0ffee", "Name": "/" + r.URL.Query().Get("name"),
			"Config": map[string]any{"Image": body.Image, "Labels": body.Labels},
			"State":  map[string]any{"Status": "created"},
		}
		if f.cutNow("create", "after") {
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"Id": "c0ffee"})
	case strings.HasSuffix(path, "/rename") && r.Method == http.MethodPost:
		if f.cutNow("rename", "before") {
			return
		}
		f.renames++
		f.container["Name"] = "/" + r.URL.Query().Get("name")
		if f.cutNow("rename", "after") {
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case strings.HasSuffix(path, "/json") && strings.HasPrefix(path, "/containers/"):
		ref := strings.TrimSuffix(strings.TrimPrefix(path, "/containers/"), "/json")
		if f.container == nil || (ref != f.container["Id"] && "/"+ref != f.container["Name"]) {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"message": "No such container: " + ref})
			return
		}
		json.NewEncoder(w).Encode(f.container)
	default:
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"message": "not faked: " + r.Method + " " + path})
	}
}

// cutNow cuts the SSH connection if op is set to be cut at this moment.
func (f *fakeDaemon) cutNow(op, when string) bool {
	if f.cut[op] != when {
		return false
	}
	delete(f.cut, op)
	f.srv.cut()
	return true
}

func startFakeDaemon(t *testing.T) (*Docker, *fakeDaemon) {
	t.Helper()
	srv := startSSHServer(t)
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDaemon{srv: srv, cut: map[string]string{}}
	hs := &http.Server{Handler: f}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	conn := dialTest(t, clientFiles(t, srv), srv.Addr)
	d, err := NewDocker(conn, sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	return d, f
}

func TestCreateAcrossRedialReobserves(t *testing.T) {
	spec := inventory.ContainerSpec{Name: "www", Image: "reg/www:abc", Labels: map[string]string{"dev.gantry.version": "abc"}}
	for _, when := range []string{"before", "after"} {
		t.Run("cut "+when+" the daemon acts", func(t *testing.T) {
			d, f := startFakeDaemon(t)
			f.cut["create"] = when
			id, err := d.Create(t.Context(), spec)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if id != "c0ffee" || f.creates != 1 {
				t.Errorf("Create = %q with %d creates, want c0ffee made exactly once", id, f.creates)
			}
			if n := f.srv.accepts.Load(); n != 2 {
				t.Errorf("%d SSH connections, want 2 (one redial)", n)
			}
		})
	}
}

func TestCreateDoesNotTakeAStrangersContainer(t *testing.T) {
	d, f := startFakeDaemon(t)
	f.container = map[string]any{"Id": "0ther", "Name": "/www", "Config": map[string]any{"Image": "reg/www:old"}}
	f.cut["create"] = "before"
	spec := inventory.ContainerSpec{Name: "www", Image: "reg/www:abc"}
	id, err := d.Create(t.Context(), spec)
	// The retried create reaches the fake, which (unlike dockerd) does
	// not check names: what matters is that the old container was not
	// taken for the new one.
	if err != nil || id != "c0ffee" || f.creates != 1 {
		t.Errorf("Create = %q, %v with %d creates; want a new container, not the one already named www", id, err, f.creates)
	}
}

func TestRenameAcrossRedialReobserves(t *testing.T) {
	for _, when := range []string{"before", "after"} {
		t.Run("cut "+when+" the daemon acts", func(t *testing.T) {
			d, f := startFakeDaemon(t)
			f.container = map[string]any{"Id": "c0ffee", "Name": "/www", "Config": map[string]any{"Image": "reg/www:abc"}}
			f.cut["rename"] = when
			if err := d.Rename(t.Context(), "c0ffee", "www-gantry-old"); err != nil {
				t.Fatalf("Rename: %v", err)
			}
			if f.renames != 1 || f.container["Name"] != "/www-gantry-old" {
				t.Errorf("%d renames, name %v; want renamed exactly once", f.renames, f.container["Name"])
			}
		})
	}
}

func TestFrozenDaemonCallsEndAtTheirTimeout(t *testing.T) {
	d, f := startFakeDaemon(t)
	d.CallTimeout = 300 * time.Millisecond
	f.frozen = make(chan struct{})
	t.Cleanup(func() { close(f.frozen) })

	if _, _, err := d.Inspect(t.Context(), "www"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Inspect on a frozen daemon = %v, want the call timeout", err)
	}
	if _, err := d.ListContainers(t.Context()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ListContainers on a frozen daemon = %v, want the call timeout", err)
	}
	// A pull whose progress stream stalls ends with its own deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := d.Pull(ctx, "reg/www:abc", RegistryAuth{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Pull on a frozen daemon = %v, want the pull deadline", err)
	}
}

// TestListImageVersionsIgnoresOtherTags: tags of other repositories, short
// ones included, and untagged images are ignored, never a panic.
func TestListImageVersionsIgnoresOtherTags(t *testing.T) {
	d, f := startFakeDaemon(t)
	repo := "127.0.0.1:5000/team/www"
	f.images = []map[string]any{
		{"Id": "sha256:a", "Created": 300, "RepoTags": []string{repo + ":v2", "x"}},
		{"Id": "sha256:b", "Created": 200, "RepoTags": []string{"", ":", "www:v1", repo, repo + "-old:v1", repo + "/sub:v1"}},
		{"Id": "sha256:c", "Created": 100, "RepoTags": []string{repo + ":v1"}},
		{"Id": "sha256:d", "Created": 50, "RepoTags": nil},
	}
	got, err := d.ListImageVersions(t.Context(), repo)
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, v := range got {
		tags = append(tags, v.Tag+"="+v.ID)
	}
	if want := "v2=sha256:a v1=sha256:c"; strings.Join(tags, " ") != want {
		t.Errorf("versions = %q, want %q", strings.Join(tags, " "), want)
	}
}

// The data root comes from the path of the container's hostname file, only
// when it has the daemon's layout.
func TestDataRootOfAContainer(t *testing.T) {
	id := "0123456789abcdef"
	for _, c := range []struct{ path, want string }{
		{"/var/lib/docker/containers/" + id + "/hostname", "/var/lib/docker"},
		{"/tmp/gantry-lab/host1/data/containers/" + id + "/hostname", "/tmp/gantry-lab/host1/data"},
		{"/var/lib/docker/containers/other/hostname", ""},
		{"containers/" + id + "/hostname", ""},
		{"", ""},
	} {
		got := dataRootOf(&container.ContainerJSONBase{ID: id, HostnamePath: c.path})
		if got != c.want {
			t.Errorf("hostname file %q: data root %q, want %q", c.path, got, c.want)
		}
	}
	if got := dataRootOf(nil); got != "" {
		t.Errorf("no container: %q", got)
	}
}
