package inventory

import (
	"reflect"
	"testing"
)

func TestDecommissionRefusals(t *testing.T) {
	half := func(total int) int { return (total + 1) / 2 }
	for _, tc := range []struct {
		name     string
		services []ServiceStanding
		want     []string
	}{
		{"one healthy host stays", []ServiceStanding{{Service: "www", Staying: 1, Healthy: 1}}, nil},
		{"the last host", []ServiceStanding{{Service: "www"}},
			[]string{"service www would keep 0 healthy host(s), below min_in_service 1"}},
		{"min_in_service of the hosts it has now", []ServiceStanding{{Service: "api", Staying: 3, Healthy: 1, MinInService: half}},
			[]string{"service api would keep 1 healthy host(s), below min_in_service 2"}},
		{"enough for min_in_service", []ServiceStanding{{Service: "api", Staying: 3, Healthy: 2, MinInService: half}}, nil},
		{"start-first port unknown, then the minimum", []ServiceStanding{
			{Service: "www", Staying: 2, Healthy: 1, PortUnknown: []string{"h2"}},
			{Service: "api", Staying: 1, Healthy: 0},
		}, []string{
			"cannot tell which port h2 serves www on (unreachable), so its load balancer entries cannot be rewritten safely",
			"service api would keep 0 healthy host(s), below min_in_service 1",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DecommissionRefusals(tc.services); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}
