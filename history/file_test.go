package history

import (
	"context"
	"errors"
	"testing"

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
