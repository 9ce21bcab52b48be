package remote

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/strslice"
	units "github.com/docker/go-units"

	"github.com/gantry-dev/gantry/inventory"
)

func TestCreateConfigDefaults(t *testing.T) {
	cfg, hc, err := createConfig(inventory.ContainerSpec{
		Name: "www", Image: "reg/www:1", Env: []string{"A=1"}, StopTimeout: 30 * time.Second,
		Options: inventory.ContainerOptions{LogMaxSize: "10m", LogMaxFile: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cmd != nil || cfg.Entrypoint != nil || cfg.User != "" || cfg.WorkingDir != "" || *cfg.StopTimeout != 30 {
		t.Errorf("config %+v: want the image's command, user and directory, stop timeout 30", cfg)
	}
	want := container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}}
	if !reflect.DeepEqual(hc.LogConfig, want) {
		t.Errorf("log config %+v, want %+v", hc.LogConfig, want)
	}
	if hc.NetworkMode != "host" || hc.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
		t.Errorf("host config %+v: want host network, restart unless-stopped", hc)
	}
	if hc.Memory != 0 || hc.NanoCPUs != 0 || hc.PidsLimit != nil || hc.Init != nil || len(hc.Mounts) != 0 || hc.Tmpfs != nil {
		t.Errorf("host config %+v: want Docker's defaults", hc)
	}
}

func TestCreateConfigAppliesEveryOption(t *testing.T) {
	cfg, hc, err := createConfig(inventory.ContainerSpec{
		Name: "www", Image: "reg/www:1", StopTimeout: 10 * time.Second,
		Labels: map[string]string{"dev.gantry.version": "1", "com.example.team": "web"},
		Options: inventory.ContainerOptions{
			Command: []string{"/app", "--web"}, Entrypoint: []string{"/tini", "--"},
			WorkingDir: "/srv", User: "1000:1000",
			Volumes: []string{"data:/data", "/srv/uploads:/uploads:ro"},
			Memory:  "512m", CPUs: 1.5, PidsLimit: 200,
			Ulimits: map[string]string{"nofile": "1024:65536", "nproc": "512"},
			CapAdd:  []string{"net_admin"}, CapDrop: []string{"ALL"},
			Init: true, StopSignal: "SIGQUIT",
			Tmpfs:      []string{"/run", "/tmp:size=64m,mode=1777"},
			ExtraHosts: map[string]string{"db.internal": "10.0.0.5", "gw": "host-gateway"},
			LogDriver:  "syslog", LogOptions: map[string]string{"syslog-address": "udp://10.0.0.9:514"},
			// Rotation belongs to json-file and local: not passed to syslog.
			LogMaxSize: "10m", LogMaxFile: 3,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	pids, yes := int64(200), true
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("Cmd", cfg.Cmd, strslice.StrSlice{"/app", "--web"})
	check("Entrypoint", cfg.Entrypoint, strslice.StrSlice{"/tini", "--"})
	check("WorkingDir", cfg.WorkingDir, "/srv")
	check("User", cfg.User, "1000:1000")
	check("StopSignal", cfg.StopSignal, "SIGQUIT")
	check("Labels", cfg.Labels, map[string]string{"dev.gantry.version": "1", "com.example.team": "web"})
	check("Mounts", hc.Mounts, []mount.Mount{
		{Type: mount.TypeVolume, Source: "data", Target: "/data"},
		{Type: mount.TypeBind, Source: "/srv/uploads", Target: "/uploads", ReadOnly: true},
	})
	check("Memory", hc.Memory, int64(512<<20))
	check("NanoCPUs", hc.NanoCPUs, int64(1_500_000_000))
	check("PidsLimit", hc.PidsLimit, &pids)
	check("Ulimits", hc.Ulimits, []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 65536}, {Name: "nproc", Soft: 512, Hard: 512}})
	check("CapAdd", []string(hc.CapAdd), []string{"CAP_NET_ADMIN"})
	check("CapDrop", []string(hc.CapDrop), []string{"ALL"})
	check("Init", hc.Init, &yes)
	check("Tmpfs", hc.Tmpfs, map[string]string{"/run": "", "/tmp": "size=64m,mode=1777"})
	check("ExtraHosts", hc.ExtraHosts, []string{"db.internal:10.0.0.5", "gw:host-gateway"})
	check("LogConfig", hc.LogConfig, container.LogConfig{Type: "syslog", Config: map[string]string{"syslog-address": "udp://10.0.0.9:514"}})
	check("NetworkMode", string(hc.NetworkMode), "host")
	var _ *units.Ulimit = hc.Ulimits[0] // the API's Ulimit is go-units'
}

func TestCreateConfigLocalDriverRotates(t *testing.T) {
	_, hc, err := createConfig(inventory.ContainerSpec{Name: "www", Image: "i", Options: inventory.ContainerOptions{
		LogDriver: "local", LogMaxSize: "20m", LogMaxFile: 5, LogOptions: map[string]string{"compress": "false"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := container.LogConfig{Type: "local", Config: map[string]string{"max-size": "20m", "max-file": "5", "compress": "false"}}
	if !reflect.DeepEqual(hc.LogConfig, want) {
		t.Errorf("log config %+v, want %+v", hc.LogConfig, want)
	}
}

// Options are checked at load time; a spec that skipped that is refused
// before any call to the daemon, every problem named.
func TestCreateConfigRefusesUncheckedOptions(t *testing.T) {
	_, _, err := createConfig(inventory.ContainerSpec{Name: "www", Image: "i", Options: inventory.ContainerOptions{
		Memory: "lots", Volumes: []string{"x"}, CapAdd: []string{"FLY"},
	}})
	if err == nil {
		t.Fatal("createConfig accepted bad options")
	}
	for _, w := range []string{`"lots" is not a size`, `"x" is not SOURCE:TARGET`, `"FLY" is not a Linux capability`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q: %v", w, err)
		}
	}
}
