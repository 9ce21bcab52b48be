package lb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/internal/hurry"
	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/internal/panics"
	"github.com/gantry-dev/gantry/internal/shell"
)

// ErrConfigTest is returned (wrapped) when nginx rejects the new upstream
// file; the previous file has been put back.
var ErrConfigTest = errors.New("load balancer config test failed")

// ErrReloadRejected is returned (wrapped) when nginx's master did not take
// a new configuration: after the reload it kept its old workers and started
// no new one within ReloadTimeout (nginx -s reload exits 0 even when the
// master rejects the configuration). The previous file has been put back.
var ErrReloadRejected = errors.New("nginx did not take the new configuration")

// DefaultReloadTimeout is how long a reload may take to start new workers
// when ReloadTimeout is not set.
const DefaultReloadTimeout = 10 * time.Second

// Runner runs a shell command on the load balancer host, with stdin.
type Runner interface {
	Run(ctx context.Context, command string, stdin []byte) ([]byte, error)
}

// RetryingRunner is a Runner that can also run a command safe to run
// twice again when the connection breaks while it runs (an SSH connection
// redialled). Every command lb runs is such a command: reads, and the
// apply script, which writes the whole file and reloads (run twice, it
// lists as old workers those of both generations, so the wait still covers
// the requests in flight before the first reload).
type RetryingRunner interface {
	Runner
	RunIdempotent(ctx context.Context, command string, stdin []byte) ([]byte, error)
}

// run runs command, again after a broken connection when the runner can.
func (o Options) run(ctx context.Context, command string, stdin []byte) ([]byte, error) {
	if r, ok := o.Runner.(RetryingRunner); ok {
		return r.RunIdempotent(ctx, command, stdin)
	}
	return o.Runner.Run(ctx, command, stdin)
}

// Server is one upstream server: the host it belongs to and host:port.
type Server struct {
	Host string
	Addr string
}

// Options describes one nginx load balancer host: how to reach it and how
// gantry tests and reloads it. Its own methods (Entries, Upstream, Check)
// only read; New builds from it the balancer that changes a service's
// upstream.
type Options struct {
	// Name names the load balancer in messages.
	Name          string
	Runner        Runner
	UpstreamsDir  string
	TestCommand   string
	ReloadCommand string
	// PidFile is nginx's master pid file. When empty, it is found from
	// nginx's configuration (the test command with -T and -V) the first
	// time it is needed; without one nothing is changed (ErrNoPidFile).
	PidFile      string
	DrainTimeout time.Duration
	// ReloadTimeout bounds how long the master may take to start new
	// workers after a reload before the reload counts as rejected
	// (DefaultReloadTimeout when zero).
	ReloadTimeout time.Duration
	// Warn receives non-fatal notes (a drain that hit its timeout).
	Warn func(string)
}

// Upstream is one service's upstream on a load balancer as a balancer
// starts from it: its servers, and which of them are down now.
type Upstream struct {
	Service string
	Servers []Server
	// Down lists the hosts marked down now.
	Down []string
	// ByHand lists the hosts of Down that someone other than gantry
	// marked down: every rewrite of the file keeps them off its "down by
	// gantry" line until a change puts them up.
	ByHand []string
}

// Nginx is one nginx load balancer host, seen as the balancer of one
// service's upstream: it drains, restores, switches and removes that
// service's hosts. Build it with New; it embeds the Options it was built
// from (read them, do not change them).
type Nginx struct {
	Options

	// service names the one upstream the balancer changes; up is its
	// model, declared by New.
	service string
	// mu serialises changes to the file; the queue collects the changes
	// waiting for it, which the next holder applies together with one
	// reload (group commit): a batch of hosts costs one reload, not one
	// each.
	mu    sync.Mutex
	up    *upstream
	qmu   sync.Mutex
	queue []*change

	pidMu        sync.Mutex
	foundPidFile string // PidFile found from nginx's configuration

	// rejected is set when the last reload nginx rejected: the file was
	// put back to what nginx kept serving, so writing that same content
	// again needs no reload (which nginx would reject again). Guarded by
	// mu.
	rejected bool

	// wmu guards the coalesced waits for old workers: at most one wait
	// session runs on the load balancer at a time, and the drains that
	// ask meanwhile share the next one (see enqueueWait).
	wmu      sync.Mutex
	waiting  bool
	nextWait *workerWait
	// waited is how long each host's last drain or switch waited for the
	// requests in flight (the old workers), guarded by wmu.
	waited map[string]time.Duration
	// warm is the apply session started ahead for the next change (see
	// Starter); arming is set while one is being started, closed once
	// Close was called. Guarded by warmMu.
	warmMu sync.Mutex
	warm   *warmApply
	arming bool
	closed bool

	// onLB is, per host, how long nginx's own work took in the last apply
	// that carried a change of the host's, as the load balancer measured
	// it (see ReloadTime); guarded by wmu.
	onLB map[string]time.Duration
	// drainedAt is, per host, when its last drain took effect: its apply
	// returned (see DrainTookEffect); guarded by wmu.
	drainedAt map[string]time.Time
}

// DrainTookEffect is when host's last drain on the load balancer took
// effect: when the apply that carried it returned, nginx's new workers
// running without the host (zero before any drain). Until then the host
// got new requests; from then on it is out of rotation.
func (n *Nginx) DrainTookEffect(service, host string) time.Time {
	return hostFigure(n, service, func() map[string]time.Time { return n.drainedAt }, host)
}

// hostFigure is host's entry of the figures map m returns, read under the
// lock that guards them, for the balancer's own service (the zero value
// for another).
func hostFigure[T any](n *Nginx, service string, m func() map[string]T, host string) T {
	n.wmu.Lock()
	defer n.wmu.Unlock()
	var zero T
	if service != n.service {
		return zero
	}
	return m()[host]
}

// ReloadTime is how long the load balancer's own work took in the last
// change applied with host's (its drain, restore or switch): from the
// moment the apply script had read the new file to the reload confirmed
// (the file moved in place, nginx's test, the reload, its new workers
// seen), measured on the load balancer itself, so the SSH session around
// it is not counted. The changes of a group commit share one apply: each
// of its hosts gets that apply's time. 0 when unknown (a load balancer
// whose date has no %N, or a change not applied yet).
func (n *Nginx) ReloadTime(service, host string) time.Duration {
	return hostFigure(n, service, func() map[string]time.Duration { return n.onLB }, host)
}

// InFlightWait is how long host's last drain (or switch) waited for the
// requests in flight to end: part of its time out of rotation that is the
// app's requests', not gantry's.
func (n *Nginx) InFlightWait(service, host string) time.Duration {
	return hostFigure(n, service, func() map[string]time.Duration { return n.waited }, host)
}

// New returns the balancer of up.Service on the load balancer o
// describes, starting from up: ready to Drain, Restore, Switch and Remove
// its hosts, with nothing changed on the load balancer yet. It refuses
// options it could not work with (no name, runner, upstreams directory,
// test or reload command) and an upstream that contradicts itself (no
// service, a server without a host or listed twice, a down host that is
// not a server, a host down by hand that is not down). Names and addresses
// that could change the meaning of the file are refused when it is
// written (ErrUnsafeName).
func New(o Options, up Upstream) (*Nginx, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"name", o.Name}, {"upstreams directory", o.UpstreamsDir}, {"test command", o.TestCommand},
		{"reload command", o.ReloadCommand}, {"service", up.Service},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if o.Runner == nil {
		missing = append(missing, "runner")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("load balancer %q: no %s", o.Name, strings.Join(missing, ", "))
	}
	u := &upstream{down: map[string]bool{}, byHand: map[string]bool{}}
	listed := map[string]bool{}
	for _, s := range up.Servers {
		if s.Host == "" || listed[s.Host] {
			return nil, fmt.Errorf("%s: upstream %s: server %q of host %q: no host, or a host listed twice", o.Name, up.Service, s.Addr, s.Host)
		}
		if !names.SafeAddr(s.Addr) {
			// Refused before any change, not at the host's first drain:
			// gantry rewrites the whole file and cannot write this back.
			return nil, fmt.Errorf("%s: upstream %s lists host %s at %q, which gantry cannot write back (it writes ADDRESS:PORT): fix or remove that line of %s/%s.conf", o.Name, up.Service, s.Host, s.Addr, o.UpstreamsDir, up.Service)
		}
		listed[s.Host] = true
		u.servers = append(u.servers, s)
	}
	sort.Slice(u.servers, func(i, j int) bool { return names.Less(u.servers[i].Host, u.servers[j].Host) })
	for _, h := range up.Down {
		if !listed[h] {
			return nil, fmt.Errorf("%s: upstream %s: down host %s is not one of its servers", o.Name, up.Service, h)
		}
		u.down[h] = true
	}
	for _, h := range up.ByHand {
		if !u.down[h] {
			return nil, fmt.Errorf("%s: upstream %s: host %s, down by hand, is not down", o.Name, up.Service, h)
		}
		u.byHand[h] = true
	}
	return &Nginx{Options: o, service: up.Service, up: u}, nil
}

// workerWait is one wait session's worth of old nginx workers, shared by
// every drain whose workers it covers.
type workerWait struct {
	pids []string
	seen map[string]bool
	done chan struct{}
	err  error
	out  string
}

// change is one host's drain or restore waiting to be applied.
type change struct {
	service, host string
	down          bool
	addr          string // a switch: the host's new address ("" otherwise)
	done          chan changeResult
}

type changeResult struct {
	old  string      // workers to wait for (drains)
	wait *workerWait // the wait session that covers them
	err  error
}

type upstream struct {
	servers []Server
	down    map[string]bool
	// byHand are the down hosts gantry did not take out (an operator
	// marked them down in the file): the file keeps saying so, so that
	// every later run still tells them from its own drains.
	byHand map[string]bool
}

// upstreamOf returns the model of service's upstream, or nil when the
// balancer is not service's. Callers hold n.mu.
func (n *Nginx) upstreamOf(service string) *upstream {
	if service != n.service {
		return nil
	}
	return n.up
}

// AddServer adds server to service's upstream, down, unless its host is
// listed already: a later Switch or Restore puts it up.
func (n *Nginx) AddServer(service string, server Server) {
	n.mu.Lock()
	defer n.mu.Unlock()
	u := n.upstreamOf(service)
	if u == nil {
		return
	}
	for _, s := range u.servers {
		if s.Host == server.Host {
			return
		}
	}
	u.servers = append(u.servers, server)
	sort.Slice(u.servers, func(i, j int) bool { return names.Less(u.servers[i].Host, u.servers[j].Host) })
	u.down[server.Host] = true
}

// Remove takes host out of service's upstream for good: it drains it
// (marked down, in-flight requests finish) and then rewrites the file
// without it.
func (n *Nginx) Remove(ctx context.Context, service, host string) error {
	if err := n.Drain(ctx, service, host); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	u := n.upstreamOf(service)
	keep := u.servers[:0:0]
	for _, s := range u.servers {
		if s.Host != host {
			keep = append(keep, s)
		}
	}
	content, err := render(n.Name, service, keep, u.down, u.byHand)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	if _, _, err := n.apply(ctx, service, content, false); err != nil {
		return err
	}
	u.servers = keep
	delete(u.down, host)
	return nil
}

// Upstream reads service's upstream file on the load balancer and returns
// each listed host's state: "up" or "down".
func (o Options) Upstream(ctx context.Context, service string) (map[string]string, error) {
	entries, err := o.Entries(ctx, service)
	if err != nil {
		return nil, err
	}
	states := make(map[string]string, len(entries))
	for h, e := range entries {
		states[h] = e.State()
	}
	return states, nil
}

// Entries reads service's upstream file on the load balancer and returns
// each listed host's entry, as it is on the machine now. A missing file
// lists no host.
func (o Options) Entries(ctx context.Context, service string) (map[string]Entry, error) {
	f := path.Join(o.UpstreamsDir, service+".conf")
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// The shell's own read: no fork.
	out, err := o.run(rctx, fmt.Sprintf(`f=%s; [ -e "$f" ] || exit 0; while IFS= read -r l || [ -n "$l" ]; do printf '%%s\n' "$l"; done <"$f"`, shell.Quote(f)), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: reading %s: %w", o.Name, f, err)
	}
	return ParseEntries(string(out)), nil
}

// Entry is one host's line in an upstream file.
type Entry struct {
	// Addr is the host:port the line sends requests to.
	Addr string
	// Down is true when the line is marked down (drained).
	Down bool
	// ByHand is true for a down line that the file's "down by gantry"
	// comment does not name: someone else marked the host down.
	ByHand bool
}

// State is "up" or "down".
func (e Entry) State() string {
	if e.Down {
		return "down"
	}
	return "up"
}

// ParseUpstream reads an upstream file gantry wrote: "server ADDR [down]; # host".
func ParseUpstream(content string) map[string]string {
	states := map[string]string{}
	for h, e := range ParseEntries(content) {
		states[h] = e.State()
	}
	return states
}

// ParseEntries reads an upstream file gantry wrote, by host: each server
// line names its host first in its comment. A down line whose host the
// "# down by gantry:" comment does not name is ByHand. Lines edited by
// hand are read as well as they can be: any blanks between the words, and
// a note after the host's name ("# web-1 bad disk"), so that a host
// marked down by hand stays down; a line with no address is not an entry.
func ParseEntries(content string) map[string]Entry {
	entries := map[string]Entry{}
	ours := map[string]bool{}
	for _, line := range strings.Split(content, "\n") {
		line = strings.TrimSpace(line)
		if list, ok := strings.CutPrefix(line, downByGantry); ok {
			for _, h := range strings.Fields(list) {
				ours[h] = true
			}
			continue
		}
		decl, comment, ok := strings.Cut(line, "#")
		words := strings.Fields(comment)
		fields := strings.Fields(strings.ReplaceAll(decl, ";", " "))
		if !ok || len(words) == 0 || len(fields) < 2 || fields[0] != "server" {
			continue
		}
		e := Entry{Addr: fields[1]}
		for _, f := range fields[2:] {
			e.Down = e.Down || f == "down"
		}
		entries[words[0]] = e
	}
	for h, e := range entries {
		if e.Down && !ours[h] {
			e.ByHand = true
			entries[h] = e
		}
	}
	return entries
}

// Drain marks host down in service's upstream, reloads nginx and waits for
// in-flight requests to the host to finish (bounded by DrainTimeout).
func (n *Nginx) Drain(ctx context.Context, service, host string) error {
	return n.set(ctx, service, host, true)
}

// Restore marks host up again in service's upstream and reloads nginx.
func (n *Nginx) Restore(ctx context.Context, service, host string) error {
	return n.set(ctx, service, host, false)
}

// Switch points host's entry in service's upstream at addr (host:port),
// marks it up and reloads nginx once, then waits until the workers that may
// still proxy to its previous address have exited (bounded by
// DrainTimeout). The host never leaves rotation: start-first deploys.
func (n *Nginx) Switch(ctx context.Context, service, host, addr string) error {
	return n.submit(ctx, &change{service: service, host: host, addr: addr, done: make(chan changeResult, 1)})
}

// Check runs the test command, changing nothing: the pre-flight proof that
// a reload would be accepted. The pid file it finds is remembered for the
// balancer's changes, and the session of the first change is started
// ahead (see Starter).
func (n *Nginx) Check(ctx context.Context) error {
	if err := n.Options.check(ctx, n.masterPidFile); err != nil {
		return err
	}
	n.arm(ctx)
	return nil
}

// Check runs the test command on the load balancer and finds its master's
// pid file, changing nothing: the proof that a balancer built from o could
// reload it.
func (o Options) Check(ctx context.Context) error {
	return o.check(ctx, o.masterPidFile)
}

func (o Options) check(ctx context.Context, masterPidFile func(context.Context) (string, error)) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if o.PidFile != "" {
		// The test and the pid file's check in one command: one session.
		out, err := o.run(ctx, testThenCheckPidScript(o.TestCommand, o.PidFile), nil)
		if shell.ExitStatus(err) == exitTestFailed {
			return fmt.Errorf("%s: %w (%s): %v", o.Name, ErrConfigTest, o.TestCommand, err)
		}
		if err == nil {
			if why := strings.TrimSpace(string(out)); why != "ok" {
				err = errors.New(why)
			}
		} else {
			err = fmt.Errorf("could not be checked: %w", err)
		}
		if err != nil {
			return fmt.Errorf("%s: %w: pid_file %s %v; set pid_file for load balancer %s to the path of the \"pid\" directive of its nginx.conf, or leave it out to let gantry find it", o.Name, ErrNoPidFile, o.PidFile, err, o.Name)
		}
		return nil
	}
	if _, err := o.run(ctx, o.TestCommand, nil); err != nil {
		return fmt.Errorf("%s: %w (%s): %v", o.Name, ErrConfigTest, o.TestCommand, err)
	}
	// A drain must be able to wait for requests in flight, and a reload
	// to be confirmed: both need the master's pid.
	pidFile, err := masterPidFile(ctx)
	if err != nil {
		return err
	}
	if o.PidFile != "" {
		if err := o.checkPidFile(ctx, pidFile); err != nil {
			return fmt.Errorf("%s: %w: pid_file %s %v; set pid_file for load balancer %s to the path of the \"pid\" directive of its nginx.conf, or leave it out to let gantry find it", o.Name, ErrNoPidFile, pidFile, err, o.Name)
		}
	}
	return nil
}

// reloadTimeout is ReloadTimeout, or DefaultReloadTimeout when not set.
func (o Options) reloadTimeout() time.Duration {
	if o.ReloadTimeout <= 0 {
		return DefaultReloadTimeout
	}
	return o.ReloadTimeout
}

// LoadBalancerName names the load balancer in reports.
func (o Options) LoadBalancerName() string { return o.Name }

func (n *Nginx) set(ctx context.Context, service, host string, down bool) error {
	return n.submit(ctx, &change{service: service, host: host, down: down, done: make(chan changeResult, 1)})
}

// submit queues c and applies the queue unless the previous holder of the
// lock applied c with its own.
func (n *Nginx) submit(ctx context.Context, c *change) error {
	n.qmu.Lock()
	n.queue = append(n.queue, c)
	n.qmu.Unlock()

	n.mu.Lock()
	select {
	case r := <-c.done: // applied by the previous holder, with its own
		n.mu.Unlock()
		return n.finish(ctx, c, r)
	default:
	}
	n.qmu.Lock()
	batch := n.queue
	n.queue = nil
	n.qmu.Unlock()
	n.applyChanges(ctx, batch)
	n.mu.Unlock()
	return n.finish(ctx, c, <-c.done)
}

// finish waits, for a drain, until the workers that ran before its reload
// are gone. The wait happens outside the lock, so drains overlap.
func (n *Nginx) finish(ctx context.Context, c *change, r changeResult) error {
	if r.err != nil || !(c.down || c.addr != "") {
		return r.err
	}
	start := time.Now()
	err := n.awaitWorkers(ctx, r.wait, r.old)
	n.wmu.Lock()
	if n.waited == nil {
		n.waited = map[string]time.Duration{}
	}
	n.waited[c.host] = time.Since(start)
	n.wmu.Unlock()
	return err
}

// applyChanges applies queued changes, one file write, test and reload per
// service, and answers each change. Callers hold n.mu. The work is short
// and must not be cut by one caller's interrupt, since it carries other
// callers' changes (restores among them).
func (n *Nginx) applyChanges(ctx context.Context, batch []*change) {
	ctx = context.WithoutCancel(ctx)
	byService := map[string][]*change{}
	var order []string
	for _, c := range batch {
		u := n.upstreamOf(c.service)
		if u == nil {
			c.done <- changeResult{err: fmt.Errorf("%s: no upstream declared for service %s", n.Name, c.service)}
			continue
		}
		known := false
		for _, s := range u.servers {
			known = known || s.Host == c.host
		}
		if !known {
			c.done <- changeResult{err: fmt.Errorf("%s: host %s is not a server of upstream %s", n.Name, c.host, c.service)}
			continue
		}
		if _, seen := byService[c.service]; !seen {
			order = append(order, c.service)
		}
		byService[c.service] = append(byService[c.service], c)
	}
	for _, service := range order {
		changes := byService[service]
		u := n.upstreamOf(service)
		before := make(map[string]bool, len(u.down))
		for h, d := range u.down {
			before[h] = d
		}
		servers := append([]Server(nil), u.servers...)
		wait := false
		hand := make(map[string]bool, len(u.byHand))
		for h, d := range u.byHand {
			hand[h] = d
		}
		for _, c := range changes {
			u.down[c.host] = c.down
			if !c.down {
				delete(hand, c.host) // up again: nobody's down any more
			}
			wait = wait || c.down
			if c.addr != "" {
				// Requests in flight on the previous address are waited for.
				wait = true
				for i := range servers {
					if servers[i].Host == c.host {
						servers[i].Addr = c.addr
					}
				}
			}
		}
		var old string
		var onLB time.Duration
		content, err := render(n.Name, service, servers, u.down, hand)
		if err == nil {
			old, onLB, err = n.apply(ctx, service, content, wait)
		} else {
			err = fmt.Errorf("%s: %w", n.Name, err)
		}
		if err != nil {
			u.down = before
		} else {
			u.servers, u.byHand = servers, hand
		}
		applied := time.Now()
		n.wmu.Lock()
		if n.onLB == nil {
			n.onLB = map[string]time.Duration{}
			n.drainedAt = map[string]time.Time{}
		}
		for _, c := range changes {
			n.onLB[c.host] = onLB
			if err == nil && c.down {
				n.drainedAt[c.host] = applied
			}
		}
		n.wmu.Unlock()
		var w *workerWait
		if err == nil && strings.TrimSpace(old) != "" {
			// One wait for the whole group: its changes share the workers.
			w = n.enqueueWait(ctx, old)
		}
		for _, c := range changes {
			c.done <- changeResult{old: old, wait: w, err: err}
		}
	}
}

// ErrUnsafeName is returned (wrapped) by Render for a host name, address,
// service or load balancer name that could change the meaning of the file:
// anything outside the characters of package names.
var ErrUnsafeName = errors.New("unsafe name in upstream file")

// Render returns the upstream include file for service: one server line per
// host, "down" for drained hosts. It refuses, whatever checks were made
// upstream, a name or address that could add a line, a directive or a block
// to the file (a newline, ';', '{', '#', ...): discovery and the config
// check them first, this is the last line of defence.
//
// The hosts marked down are named on a "# down by gantry:" comment line,
// but for those in byHand: so a later run can tell the hosts an operator
// marked down by hand (ByHand entries) from its own drains.
func Render(lbName, service string, servers []Server, down map[string]bool) ([]byte, error) {
	return render(lbName, service, servers, down, nil)
}

// downByGantry starts the comment line naming the hosts gantry marked down.
const downByGantry = "# down by gantry:"

func render(lbName, service string, servers []Server, down, byHand map[string]bool) ([]byte, error) {
	if !names.Safe(lbName) || !names.Safe(service) {
		return nil, fmt.Errorf("%w: load balancer %q, service %q", ErrUnsafeName, lbName, service)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Managed by gantry (service %s on %s). Do not edit: rewritten on every deploy.\n", service, lbName)
	for _, s := range servers {
		if !names.Safe(s.Host) || !names.SafeAddr(s.Addr) {
			return nil, fmt.Errorf("%w: server %q of host %q in upstream %s", ErrUnsafeName, s.Addr, s.Host, service)
		}
		flag := ""
		if down[s.Host] {
			flag = " down"
		}
		fmt.Fprintf(&b, "server %s%s; # %s\n", s.Addr, flag, s.Host)
	}
	var ours []string
	for _, s := range servers {
		if down[s.Host] && !byHand[s.Host] {
			ours = append(ours, s.Host)
		}
	}
	if len(ours) > 0 {
		fmt.Fprintf(&b, "%s %s\n", downByGantry, strings.Join(ours, " "))
	}
	return []byte(b.String()), nil
}

// Exit codes of the apply script that mean something to Go.
const (
	exitTestFailed     = 41
	exitDrainTimout    = 42
	exitReloadRejected = 43
	exitNoMaster       = 44
	// exitIncomplete: the apply script got no complete request, and
	// changed nothing.
	exitIncomplete = 45
)

// applyRequest is what the apply script reads on stdin: a header line
// with content's length in bytes and keepSame, then content. The script
// reads it with the shell's read, line by line, so content must be lines
// ended by a newline, without NUL bytes (as Render writes them).
func applyRequest(content []byte, keepSame bool) ([]byte, error) {
	if len(content) > 0 && content[len(content)-1] != '\n' || bytes.IndexByte(content, 0) >= 0 {
		return nil, errors.New("upstream file content is not newline-ended text")
	}
	same := 0
	if keepSame {
		same = 1
	}
	req := fmt.Appendf(nil, "gantry-apply %d %d\n", len(content), same)
	return append(req, content...), nil
}

// apply writes content over the service's upstream file atomically, tests
// and reloads nginx, and confirms the master took the new configuration
// (it started new workers). After a rejected reload of the service, a file
// that would not change is left alone, with no reload. When wait is set it
// returns the pids of the worker processes that ran before the reload: they
// may still be proxying to a drained host. onLB is the script's own time on
// the load balancer (0 when it could not tell).
func (n *Nginx) apply(ctx context.Context, service string, content []byte, wait bool) (old string, onLB time.Duration, err error) {
	file := path.Join(n.UpstreamsDir, service+".conf")
	script, err := n.applyCommand(ctx)
	if err != nil {
		return "", 0, err
	}
	req, err := applyRequest(content, n.rejected)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %s: %w", n.Name, file, err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second+n.reloadTimeout())
	defer cancel()
	out, err := n.runApply(rctx, script, req)
	// The next change finds a session ready.
	n.arm(ctx)
	if shell.ExitStatus(err) == exitReloadRejected {
		n.rejected = true
	} else if err == nil {
		n.rejected = false
	}
	if err == nil {
		old, onLB := parseApplyOutput(string(out))
		if !wait {
			old = ""
		}
		return old, onLB, nil
	}
	switch shell.ExitStatus(err) {
	case exitTestFailed:
		return "", 0, fmt.Errorf("%s: %w (%s); previous %s restored: %v", n.Name, ErrConfigTest, n.TestCommand, file, err)
	case exitReloadRejected:
		return "", 0, fmt.Errorf("%s: %w (%s); previous %s restored, nginx left on its previous configuration: %v", n.Name, ErrReloadRejected, n.ReloadCommand, file, err)
	case exitNoMaster:
		return "", 0, fmt.Errorf("%s: %w; nothing changed: %v", n.Name, ErrNoPidFile, err)
	}
	return "", 0, fmt.Errorf("%s: updating %s: %w", n.Name, file, err)
}

// onLBLine starts the apply script's last line: its own time on the load
// balancer, in microseconds.
const onLBLine = "gantry-on-lb-us "

// parseApplyOutput splits the apply script's output into the pids of the
// workers that ran before the reload and the script's own time on the load
// balancer (0 when it printed none).
func parseApplyOutput(out string) (old string, onLB time.Duration) {
	var pids []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if us, ok := strings.CutPrefix(line, onLBLine); ok {
			if v, err := strconv.ParseInt(us, 10, 64); err == nil && v >= 0 {
				onLB = time.Duration(v) * time.Microsecond
			}
			continue
		}
		if line != "" {
			pids = append(pids, line)
		}
	}
	return strings.Join(pids, " "), onLB
}

// Waiting for old workers: after a reload, a drain waits until the worker
// processes that ran before it have exited (in-flight requests finished),
// bounded by DrainTimeout: past it, the drain goes on with a warning.
//
// Waits are coalesced: while one wait session runs on the load balancer,
// every group of changes that asks joins the next one, which waits for
// all their workers together. However large the batch, draining it costs
// at most two wait sessions on the load balancer's SSH connection, never
// one per host (stock sshd allows 10 sessions per connection). A drain may
// wait a little longer than its own workers need, for the others of its
// batch.

// enqueueWait adds pids to the next wait session, starting it at once if
// none runs, and returns it. A group of changes applied together enqueues
// its workers once.
func (n *Nginx) enqueueWait(ctx context.Context, pids string) *workerWait {
	n.wmu.Lock()
	defer n.wmu.Unlock()
	if n.nextWait == nil {
		n.nextWait = &workerWait{seen: map[string]bool{}, done: make(chan struct{})}
	}
	w := n.nextWait
	for _, p := range strings.Fields(pids) {
		if !w.seen[p] {
			w.seen[p] = true
			w.pids = append(w.pids, p)
		}
	}
	if !n.waiting {
		n.waiting = true
		n.nextWait = nil
		// The session carries other drains' waits: one caller's interrupt
		// must not cut it (a second interrupt, the hurry, still does).
		go n.runWaits(context.WithoutCancel(ctx), w)
	}
	return w
}

// awaitWorkers waits for the session w that covers pids to end.
func (n *Nginx) awaitWorkers(ctx context.Context, w *workerWait, pids string) error {
	if w == nil {
		return nil
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		if !hurry.Now(ctx) {
			return ctx.Err()
		}
		<-w.done
	}
	if w.err == nil {
		return nil
	}
	if hurry.Now(ctx) {
		if n.Warn != nil {
			n.Warn(fmt.Sprintf("%s: stopped waiting for requests in flight (old nginx workers %s): interrupted twice", n.Name, pids))
		}
		return nil
	}
	if shell.ExitStatus(w.err) == exitDrainTimout {
		return nil // runWaits warned once for the whole session
	}
	return fmt.Errorf("%s: waiting for old nginx workers: %w", n.Name, w.err)
}

// runWaits runs wait sessions, one at a time: w, then whatever waits
// gathered while it ran.
func (n *Nginx) runWaits(ctx context.Context, w *workerWait) {
	for w != nil {
		n.runWait(ctx, w)
		close(w.done)
		n.wmu.Lock()
		w = n.nextWait
		n.nextWait = nil
		if w == nil {
			n.waiting = false
		}
		n.wmu.Unlock()
	}
}

// runWait is one wait session: until none of w's workers runs.
func (n *Nginx) runWait(ctx context.Context, w *workerWait) {
	defer panics.Recover(func(err error) { w.err = err })
	secs := int((n.DrainTimeout + time.Second - 1) / time.Second)
	rctx, cancel := context.WithTimeout(ctx, n.DrainTimeout+30*time.Second)
	defer cancel()
	// A second interrupt cuts the wait short: the hosts go back at once.
	rctx, stop := hurry.Wait(rctx)
	defer stop()
	out, err := n.run(rctx, waitScript(strings.Join(w.pids, " "), secs), nil)
	w.out, w.err = strings.TrimSpace(string(out)), err
	if err != nil && shell.ExitStatus(err) == exitDrainTimout && !hurry.Now(ctx) && n.Warn != nil {
		n.Warn(fmt.Sprintf("%s: old nginx workers still running after drain timeout %s (%s); continuing", n.Name, n.DrainTimeout, w.out))
	}
}

// applyScript is the POSIX shell script run on the load balancer to replace
// the file, test, reload and confirm the reload. The new file content
// arrives on stdin as a request (applyRequest) that says its length: the
// script changes nothing unless it read all of it, so that a session
// opened ahead (see Starter) and never given its request, or cut in the
// middle of it, leaves the load balancer as it was (exitIncomplete). The
// script does not depend on the request, so one can be started before the
// change is known. Every interpolated value is quoted, except the test
// and reload commands, which are shell commands from the config.
//
// A reload is confirmed when the master (as the pid file names it after
// the reload) has a child process it did not have before: nginx starts new
// workers only once it has taken the new configuration, and keeps its old
// ones when it rejects it. Without that within secs seconds, the previous
// file is put back and nginx reloaded once more (so that a master that was
// only slow ends on the previous file too) and the script exits
// exitReloadRejected. It prints the pids of the workers running before
// the reload, then a line with its own time (onLBLine): from when it had
// read the new file to the reload confirmed, in microseconds, from GNU
// date's %N (with a date that has no %N, no such line: the time is then
// unknown, the apply works all the same).
//
// With the request's keepSame, content equal to the file's is not written
// nor reloaded:
// only for a file put back after a rejected reload, which nginx still
// serves. Otherwise the same content is reloaded all the same: a run cut
// off between writing the file and reloading leaves a file nginx does not
// serve yet.
func applyScript(file, testCmd, reloadCmd, pidFile string, secs int) string {
	q := shell.Quote
	return fmt.Sprintf(`set -u
f=%s; tmp="$f.gantry-tmp"; prev="$f.gantry-prev"; pidfile=%s
# The request (applyRequest): a header line "gantry-apply LEN SAME", then
# exactly LEN bytes of newline-ended lines. It is read with the shell's
# own read (no fork) and nothing is touched unless all of it arrived: an
# input that ends early (a session abandoned, a connection dropped) or
# does not parse exits %d.
hdr=""; IFS= read -r hdr || { echo "no apply request (input ended)" >&2; exit %d; }
case "$hdr" in
  "gantry-apply "[0-9]*" "[01]) ;;
  *) echo "malformed apply request header" >&2; exit %d;;
esac
n=${hdr#gantry-apply }; same=${n#* }; n=${n%%%% *}
case "$n" in ''|*[!0-9]*|??????????*) echo "malformed apply request length" >&2; exit %d;; esac
c=""; got=0
while [ "$got" -lt "$n" ]; do
  line=""
  IFS= read -r line || { echo "incomplete apply request: $got of $n bytes" >&2; exit %d; }
  c="$c$line
"
  got=$(( got + ${#line} + 1 ))
done
[ "$got" -eq "$n" ] || { echo "apply request of $got bytes, announced $n" >&2; exit %d; }
case "$f" in */*) d=${f%%/*};; *) d=.;; esac
[ -z "$d" ] || [ -d "$d" ] || mkdir -p "$d" || exit 1
printf '%%s' "$c" > "$tmp" || exit 1
`, q(file), q(pidFile), exitIncomplete, exitIncomplete, exitIncomplete, exitIncomplete, exitIncomplete, exitIncomplete) + fmt.Sprintf(`# onlb: the time since the file was read, in microseconds, when date has
# %%N (19 digits of nanoseconds); nothing otherwise. Never fails.
t0=$(date +%%s%%N 2>/dev/null) || t0=""
onlb() {
  t1=$(date +%%s%%N 2>/dev/null) || t1=""
  case "$t0" in ''|*[!0-9]*) return 0;; esac
  case "$t1" in ''|*[!0-9]*) return 0;; esac
  [ ${#t0} -eq 19 ] && [ ${#t1} -eq 19 ] || return 0
  echo "%s$(( (t1 - t0) / 1000 ))"
}
if [ "$same" = 1 ] && [ -f "$f" ] && cmp -s "$tmp" "$f"; then rm -f "$tmp"; onlb; exit 0; fi
m=""; { read -r m < "$pidfile"; } 2>/dev/null || true
case "$m" in ''|*[!0-9]*) m="";; esac
if [ -z "$m" ] || [ ! -d "/proc/$m" ]; then
  rm -f "$tmp"; echo "pid file $pidfile names no running nginx master (${m:-empty or unreadable})" >&2; exit %d
fi
had=0; if [ -f "$f" ]; then cp -p "$f" "$prev" || exit 1; had=1; fi
putback() { if [ "$had" = 1 ]; then mv -f "$prev" "$f"; else rm -f "$f"; fi; }
mv -f "$tmp" "$f" || exit 1
if ! out=$( { %s ; } 2>&1 ); then
  putback; echo "$out" >&2; exit %d
fi
# kids M: the master's worker processes (from /proc without a fork where
# the kernel lists children there, else from ps).
kids() {
  if [ -r "/proc/$1/task/$1/children" ]; then
    k=""; read -r k < "/proc/$1/task/$1/children" || true; echo $k
  else
    echo $(ps -o pid= --ppid "$1" 2>/dev/null)
  fi
}
old=$(kids "$m")
if ! out=$( { %s ; } 2>&1 ); then putback; echo "$out" >&2; exit 1; fi
end=$(( $(date +%%s) + %d ))
while :; do
  m=""; read -r m < "$pidfile" 2>/dev/null || true
  case "$m" in ''|*[!0-9]*) m=0;; esac
  for p in $(kids "$m"); do
    case " $old " in *" $p "*) ;; *) echo $old; onlb; exit 0;; esac
  done
  if [ "$(date +%%s)" -gt "$end" ]; then
    putback
    { %s ; } >/dev/null 2>&1
    echo "the nginx master kept its old workers (${old:-none}) and started no new one within %ds of the reload: it rejected the new configuration (see its error log)" >&2
    exit %d
  fi
  sleep 0.01
done
`, onLBLine, exitNoMaster, testCmd, exitTestFailed, reloadCmd, secs, reloadCmd, secs, exitReloadRejected)
}

// waitScript waits until none of pids runs, for at most secs seconds.
func waitScript(pids string, secs int) string {
	return fmt.Sprintf(`old=%s; end=$(( $(date +%%s) + %d ))
while :; do
  left=""; for p in $old; do [ -d "/proc/$p" ] && left="$left $p"; done
  [ -z "$left" ] && exit 0
  [ "$(date +%%s)" -ge "$end" ] && { echo "old workers:$left"; exit %d; }
  sleep 0.02
done
`, shell.Quote(pids), secs, exitDrainTimout)
}
