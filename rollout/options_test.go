package rollout

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/inventory"
)

// Every container the executor creates, stop-first or start-first, gets
// the service's container options and labels; gantry's own labels win.
func TestCreatedContainersCarryTheServiceOptions(t *testing.T) {
	opts := inventory.ContainerOptions{
		Command: []string{"/app", "--web"}, User: "1000:1000", Memory: "256m",
		Volumes: []string{"data:/data"}, LogDriver: "local", LogMaxSize: "10m", LogMaxFile: 3,
	}
	for _, tc := range []struct {
		name  string
		order Strategy
	}{{"stop-first", Strategy{}}, {"start-first", startFirst}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(2, "old1")
			e := f.executor(time.Second)
			e.Service.Options = opts
			e.Service.Labels = map[string]string{"com.example.team": "web", inventory.LabelVersion: "forged"}
			if rep := e.Run(context.Background(), f.planWith("new2", 1, tc.order)); !rep.OK() {
				t.Fatalf("deploy: %v\n%s", rep.Err, rep)
			}
			for _, h := range f.Hosts {
				c, ok := h.Container("www")
				if !ok {
					t.Fatalf("%s: no www container", h.Name())
				}
				if !reflect.DeepEqual(c.Options, opts) {
					t.Errorf("%s: options %+v, want %+v", h.Name(), c.Options, opts)
				}
				if c.Labels["com.example.team"] != "web" || c.Labels[inventory.LabelVersion] != "new2" {
					t.Errorf("%s: labels %v: want the service's label and gantry's version new2", h.Name(), c.Labels)
				}
			}
		})
	}
}
