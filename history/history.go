// Package history is the deploy audit trail, kept on the fleet beside the
// deploy locks so that every deployer reads the same trail: one JSON line
// per deploy or rollback (who, when, from which version to which, on which
// hosts, and the outcome), appended with O_APPEND on the lock's machine.
package history

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/internal/shell"
)

// Runner runs a shell command on the machine keeping the trail.
type Runner interface {
	Run(ctx context.Context, command string, stdin []byte) ([]byte, error)
}

// HostEntry is one host's part of a run.
type HostEntry struct {
	Host    string `json:"host"`
	From    string `json:"from"`
	To      string `json:"to"`
	Ended   string `json:"ended"`
	Outcome string `json:"outcome"`
}

// Entry is one deploy or rollback.
type Entry struct {
	Time      time.Time `json:"time"`
	Who       string    `json:"who"`
	Kind      string    `json:"kind"` // deploy | rollback
	Env       string    `json:"env"`
	Service   string    `json:"service"`
	Target    string    `json:"target"`
	Outcome   string    `json:"outcome"` // a rollout.RunOutcome: succeeded | failed | reverted | revert-failed | interrupted
	DurationS float64   `json:"duration_s"`
	Message   string    `json:"message,omitempty"`
	// Release says how the release command ended, in one line (never its
	// output): "release command ok (exit 0) on host1".
	Release string `json:"release,omitempty"`
	// Canary says how the canary stage ended, with its figures.
	Canary string      `json:"canary,omitempty"`
	Hosts  []HostEntry `json:"hosts"`
}

// Store is the trail of one environment, in Dir on the machine Runner reaches.
type Store struct {
	Runner Runner
	Dir    string
}

// file is the trail of a service. Names that could leave the directory
// or confuse the shell are refused, whatever the config checked before.
func (s Store) file(env, service string) (string, error) {
	if !names.Safe(env) || !names.Safe(service) {
		return "", fmt.Errorf("history: %w: environment %q, service %q", names.ErrInvalid, env, service)
	}
	return path.Join(s.Dir, "history", env+"--"+service+".jsonl"), nil
}

// Append adds an entry. One short write with O_APPEND: concurrent
// appenders do not interleave lines.
func (s Store) Append(ctx context.Context, e Entry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f, err := s.file(e.Env, e.Service)
	if err != nil {
		return err
	}
	_, err = s.Runner.Run(ctx, fmt.Sprintf("mkdir -p %s && cat >> %s", shell.Quote(path.Dir(f)), shell.Quote(f)), append(line, '\n'))
	return err
}

// Read returns the entries of a service, oldest first.
func (s Store) Read(ctx context.Context, env, service string) ([]Entry, error) {
	file, err := s.file(env, service)
	if err != nil {
		return nil, err
	}
	f := shell.Quote(file)
	out, err := s.Runner.Run(ctx, fmt.Sprintf("[ -f %s ] || exit 0; cat %s", f, f), nil)
	if err != nil {
		return nil, err
	}
	var entries []Entry
	// Lines have no length limit: a record of a run on thousands of hosts
	// is one long line.
	for _, line := range bytes.Split(out, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			continue // a damaged line does not hide the rest of the trail
		}
		entries = append(entries, e)
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].Time.Before(entries[j].Time) })
	return entries, nil
}

// Format renders entries as a table for people.
func Format(entries []Entry) string {
	var b strings.Builder
	if len(entries) == 0 {
		return "no deploys recorded\n"
	}
	for _, e := range entries {
		fmt.Fprintf(&b, "%s  %-8s %-22s %-13s by %s in %.1fs", e.Time.Local().Format("2006-01-02 15:04:05"), e.Kind, e.Target, e.Outcome, e.Who, e.DurationS)
		if e.Message != "" {
			fmt.Fprintf(&b, " %q", e.Message)
		}
		b.WriteString("\n")
		if e.Release != "" {
			fmt.Fprintf(&b, "    %s\n", e.Release)
		}
		if e.Canary != "" {
			fmt.Fprintf(&b, "    %s\n", e.Canary)
		}
		for _, h := range e.Hosts {
			fmt.Fprintf(&b, "    %-12s %s -> %s  now %s  (%s)\n", h.Host, orNone(h.From), h.To, orNone(h.Ended), h.Outcome)
		}
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
