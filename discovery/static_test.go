package discovery

import (
	"context"
	"reflect"
	"testing"

	"github.com/gantry-dev/gantry/config"
)

func TestStaticHostsInNaturalOrder(t *testing.T) {
	var list []config.Host
	for _, n := range []string{"host10", "host2", "host1", "host11", "host3"} {
		list = append(list, config.Host{Name: n, Address: "127.0.0.1", SSHPort: 22})
	}
	hosts, err := hostsOf(Static{List: list}.Discover(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hostNames(hosts), []string{"host1", "host2", "host3", "host10", "host11"}; !reflect.DeepEqual(got, want) {
		t.Errorf("hosts = %q, want %q", got, want)
	}
}
