package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/names"
)

type recorder struct{ commands []string }

func (r *recorder) Run(_ context.Context, command string, _ []byte) ([]byte, error) {
	r.commands = append(r.commands, command)
	return nil, nil
}

func TestHistoryFileNamesAreSafe(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ env, service string }{
		{"../..", "www"}, {"lab", "../../x"}, {"lab", "www\nrm -rf /"}, {"lab", ""}, {"lab/x", "www"},
	} {
		r := &recorder{}
		s := Store{Runner: r, Dir: "/var/lib/gantry/locks"}
		if err := s.Append(ctx, Entry{Env: tc.env, Service: tc.service}); !errors.Is(err, names.ErrInvalid) {
			t.Errorf("Append(%q, %q) = %v, want names.ErrInvalid", tc.env, tc.service, err)
		}
		if _, err := s.Read(ctx, tc.env, tc.service); !errors.Is(err, names.ErrInvalid) {
			t.Errorf("Read(%q, %q) = %v, want names.ErrInvalid", tc.env, tc.service, err)
		}
		if len(r.commands) != 0 {
			t.Errorf("%q/%q: commands ran: %q", tc.env, tc.service, r.commands)
		}
	}
}

// canned answers every command with out.
type canned struct{ out []byte }

func (c canned) Run(context.Context, string, []byte) ([]byte, error) { return c.out, nil }

// TestReadLongRecord: a record of a run on 20,000 hosts (over 1 MiB on one
// line) is read like any other.
func TestReadLongRecord(t *testing.T) {
	big := Entry{Env: "lab", Service: "www", Outcome: "succeeded", Time: time.Unix(200, 0)}
	for i := 0; i < 20000; i++ {
		big.Hosts = append(big.Hosts, HostEntry{Host: fmt.Sprintf("host%d", i), From: "v1", To: "v2", Ended: "v2", Outcome: "succeeded"})
	}
	small := Entry{Env: "lab", Service: "www", Outcome: "failed", Time: time.Unix(100, 0)}
	var data []byte
	for _, e := range []Entry{small, big, small} {
		line, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		data = append(append(data, line...), '\n')
	}
	if len(data) < 1<<20 {
		t.Fatalf("test record is only %d bytes", len(data))
	}
	entries, err := Store{Runner: canned{data}, Dir: "/d"}.Read(context.Background(), "lab", "www")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || len(entries[2].Hosts) != 20000 {
		t.Fatalf("read %d entries (last with %d hosts), want 3, the last with 20000 hosts", len(entries), len(entries[len(entries)-1].Hosts))
	}
}
