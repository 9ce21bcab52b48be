package lock

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/gantry-dev/gantry/internal/shell"
)

// Runner runs a shell command on the machine holding the locks.
type Runner interface {
	Run(ctx context.Context, command string, stdin []byte) ([]byte, error)
}

// DirStore keeps each lock as a directory <Dir>/<name>.lock holding
// info.json, on the machine Runner reaches. mkdir is atomic, so of two
// deployers creating the same lock at once exactly one succeeds.
type DirStore struct {
	Runner Runner
	Dir    string
}

const (
	exitExists = 43
	exitNoLock = 44
)

func (s DirStore) lockDir(name string) string { return path.Join(s.Dir, name+".lock") }

// Create makes the lock directory and writes info into it.
func (s DirStore) Create(ctx context.Context, name string, info Info) (bool, Info, error) {
	data, err := json.Marshal(info)
	if err != nil {
		return false, Info{}, err
	}
	d := shell.Quote(s.lockDir(name))
	script := fmt.Sprintf(`mkdir -p %s || exit 1
if mkdir %s 2>/dev/null; then cat > %s/info.json.tmp && mv %s/info.json.tmp %s/info.json && exit 0; exit 1; fi
cat %s/info.json 2>/dev/null; exit %d`, shell.Quote(s.Dir), d, d, d, d, d, exitExists)
	out, err := s.Runner.Run(ctx, script, data)
	if err == nil {
		return true, info, nil
	}
	if shell.ExitStatus(err) != exitExists {
		return false, Info{}, err
	}
	var holder Info
	if jerr := json.Unmarshal(out, &holder); jerr != nil {
		// Created this instant by someone whose record is not written yet.
		holder = Info{Who: "another deployer (record being written)"}
	}
	return false, holder, nil
}

// Read returns the current holder.
func (s DirStore) Read(ctx context.Context, name string) (Info, bool, error) {
	d := shell.Quote(s.lockDir(name))
	out, err := s.Runner.Run(ctx, fmt.Sprintf(`[ -d %s ] || exit %d; cat %s/info.json 2>/dev/null; exit 0`, d, exitNoLock, d), nil)
	if shell.ExitStatus(err) == exitNoLock {
		return Info{}, false, nil
	}
	if err != nil {
		return Info{}, false, err
	}
	var holder Info
	if len(strings.TrimSpace(string(out))) > 0 {
		if err := json.Unmarshal(out, &holder); err != nil {
			return Info{}, false, fmt.Errorf("lock record %s/info.json is damaged: %w", s.lockDir(name), err)
		}
	}
	return holder, true, nil
}

// Remove deletes the lock when it holds id ("" removes it whoever holds it).
func (s DirStore) Remove(ctx context.Context, name, id string) error {
	d := shell.Quote(s.lockDir(name))
	script := fmt.Sprintf(`[ -d %s ] || exit 0; rm -rf %s`, d, d)
	if id != "" {
		// Only the holder's own ID releases; a lock broken and taken by
		// someone else in the meantime is left alone.
		script = fmt.Sprintf(`[ -d %s ] || exit 0; grep -q %s %s/info.json 2>/dev/null || exit 0; rm -rf %s`, d, shell.Quote(`"id":"`+id+`"`), d, d)
	}
	_, err := s.Runner.Run(ctx, script, nil)
	return err
}
