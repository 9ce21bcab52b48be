package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/progress"
	"github.com/gantry-dev/gantry/rollout"
)

// tracker is what the signal handler needs to know of the command in
// progress: whether it changes nothing (then an interrupt just stops it),
// the last step of every host (printed on an abort), and the config's
// secret values, kept out of that print and of the final error message.
// main makes one and hands it to the app; its methods may be called from
// several goroutines.
type tracker struct {
	mu      sync.Mutex
	last    map[string]rollout.Event
	secrets []string
	quiet   bool
}

// changesNothing says the command running changes nothing (logs, exec): an
// interrupt stops it without the deploy's three-step message.
func (t *tracker) changesNothing() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.quiet = true
}

// interruptIsQuiet says the command running changes nothing.
func (t *tracker) interruptIsQuiet() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.quiet
}

// keepSecret records the config's secret values.
func (t *tracker) keepSecret(secrets []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.secrets = secrets
}

// redact returns s with every secret value replaced.
func (t *tracker) redact(s string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return progress.Redact(s, t.secrets)
}

// observe records a run's event: fleet.DeployOptions.OnEvent.
func (t *tracker) observe(ev rollout.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last = map[string]rollout.Event{}
	}
	t.last[ev.Host] = ev
}

// print writes the last known step of every host, in natural order.
func (t *tracker) print(w io.Writer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	hosts := make([]string, 0, len(t.last))
	for h := range t.last {
		hosts = append(hosts, h)
	}
	names.Sort(hosts)
	for _, h := range hosts {
		ev := t.last[h]
		status := "in progress"
		if ev.Done {
			status = "done"
			if ev.Err != nil {
				status = "failed: " + ev.Err.Error()
			}
		}
		fmt.Fprintf(w, "  %s: %s %s\n", h, ev.Step, progress.Redact(status, t.secrets))
	}
}
