package inventory

import (
	"fmt"
	"strings"
	"testing"
)

func pruneContainer(service, name, tag string, running bool, prev string) Container {
	img := "reg/" + service + ":" + tag
	return Container{
		ID: name + "-id", Name: name, Image: img, Running: running,
		Labels: map[string]string{
			LabelManaged: "true", LabelService: service,
			LabelVersion: tag, LabelImage: img, LabelPreviousImage: prev,
		},
	}
}

func versions(service string, tags ...string) []CachedVersion {
	var out []CachedVersion
	for _, t := range tags {
		out = append(out, CachedVersion{Tag: t, Ref: "reg/" + service + ":" + t})
	}
	return out
}

func (p PruneSet) String() string {
	var b strings.Builder
	for _, c := range p.Containers {
		fmt.Fprintf(&b, "remove container %s\n", c.Name)
	}
	for _, i := range p.Images {
		fmt.Fprintf(&b, "remove image %s\n", i.Name)
	}
	fmt.Fprintf(&b, "keep %s\n", strings.Join(p.Kept, ", "))
	return b.String()
}

// Two services on one host: api was just deployed and is pruned; www is
// in the middle of a stop-first swap (its old container stopped and
// renamed, the new one created, not started yet). Pruning api must leave
// every www container and image alone: the swap reverts to www-gantry-old.
func TestPrunePolicyTouchesOnlyTheServicesAskedAbout(t *testing.T) {
	host := []Container{
		pruneContainer("api", "api", "v4", true, "reg/api:v3"),
		pruneContainer("api", "api-gantry-old", "v3", false, ""), // left by api's deploy
		pruneContainer("www", "www-gantry-old", "w1", false, ""), // www mid-swap
		pruneContainer("www", "www-gantry-new", "w2", false, "reg/www:w1"),
		{ID: "by-hand", Name: "debug", Image: "busybox"}, // unmanaged
	}
	api := RetainedService{Name: "api", ContainerName: "api", Keep: 2, Versions: versions("api", "v4", "v3", "v2", "v1")}
	www := RetainedService{Name: "www", ContainerName: "www", Keep: 1, Versions: versions("www", "w2", "w1", "w0")}

	got := PlanPrune(host, []RetainedService{api}).String()
	want := `remove container api-gantry-old
remove image api:v2
remove image api:v1
keep api:v4, api:v3
`
	if got != want {
		t.Errorf("prune api:\n%s\nwant:\n%s", got, want)
	}

	// Asked about both, prune treats www's stopped containers as
	// leftovers, as before: only the service's deploy lock keeps a swap in
	// progress safe from that.
	got = PlanPrune(host, []RetainedService{api, www}).String()
	want = `remove container api-gantry-old
remove container www-gantry-old
remove container www-gantry-new
remove image api:v2
remove image api:v1
remove image www:w1
remove image www:w0
keep api:v4, api:v3, www:w2
`
	if got != want {
		t.Errorf("prune api and www:\n%s\nwant:\n%s", got, want)
	}
}

// A service's own container stays even when stopped by hand, and so does
// its image.
func TestPrunePolicyKeepsAServicesOwnStoppedContainer(t *testing.T) {
	host := []Container{pruneContainer("api", "api", "v2", false, "reg/api:v1")}
	got := PlanPrune(host, []RetainedService{{Name: "api", ContainerName: "api", Keep: 1, Versions: versions("api", "v3", "v2", "v1")}}).String()
	want := `remove image api:v3
remove image api:v1
keep api:v2
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// A web service and its worker built from one image: the worker runs an
// older version than the web service's newest. Pruning www keeps its own
// last 2 versions, and the worker's image as in use, which takes none of
// www's places.
func TestPrunePolicySharedImage(t *testing.T) {
	shared := func(service, name, tag, prev string) Container {
		c := pruneContainer("img", name, tag, true, prev)
		c.Labels[LabelService] = service
		return c
	}
	host := []Container{
		shared("www", "www", "v5", "reg/img:v4"),
		shared("jobs", "jobs", "v1", ""),
	}
	www := RetainedService{Name: "www", ContainerName: "www", Keep: 2, Versions: versions("img", "v5", "v4", "v3", "v2", "v1")}
	got := PlanPrune(host, []RetainedService{www}).String()
	want := `remove image www:v3
remove image www:v2
keep www:v5, www:v4, www:v1 (in use)
`
	if got != want {
		t.Errorf("prune www:\n%s\nwant:\n%s", got, want)
	}
}
