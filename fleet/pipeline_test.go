package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/history"
	"github.com/gantry-dev/gantry/internal/shell"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lock"
	"github.com/gantry-dev/gantry/notify"
	"github.com/gantry-dev/gantry/rollout"
)

const (
	testRegistry = "127.0.0.1:5000"
	testImage    = "gantry/www"
)

// runFleet is what a Pipeline's dependencies see of a fleet, in memory:
// the hosts and the versions they run, with a records machine (lock,
// history, rollback intents) in a temporary directory run by the local sh,
// as sshd would run it. It records what the pipeline asked of it.
type runFleet struct {
	t       *testing.T
	hosts   []rollout.HostSnapshot
	records string // the records directory
	locker  *lock.Locker

	// preflightErr, hookErr (by hook name) and fail (host whose swap
	// fails, and is put back) shape the run.
	preflightErr error
	hookErr      map[string]error
	fail         string

	mu       sync.Mutex
	calls    []string // observe, plan, preflight, hook NAME, notify EVENT, execute, verify, prune
	executed []string // hosts the executor was given, in plan order
	lockedBy string   // who held the service's lock while it executed
}

func newRunFleet(t *testing.T, zones ...string) *runFleet {
	f := &runFleet{t: t, records: filepath.Join(t.TempDir(), "records")}
	for i, z := range zones {
		name := fmt.Sprintf("host%d", i+1)
		f.hosts = append(f.hosts, rollout.HostSnapshot{
			Host: inventory.Host{Name: name, Zone: z, Address: "10.0.0." + name[len(name)-1:]},
			Current: &inventory.Container{ID: "id-v1", Name: "www", Image: testRegistry + "/" + testImage + ":v1", Running: true,
				Labels: map[string]string{inventory.LabelManaged: "true", inventory.LabelVersion: "v1", inventory.LabelImage: testRegistry + "/" + testImage + ":v1"}},
		})
	}
	f.locker = f.newLocker(1)
	return f
}

// newLocker is a deployer's locker (its process pid) over the fleet's
// lock directory.
func (f *runFleet) newLocker(pid int) *lock.Locker {
	return &lock.Locker{Store: lock.DirStore{Runner: &shell.LocalRunner{}, Dir: f.records, Host: "lb1"}, TTL: time.Minute,
		Self: lock.Process{Machine: "ci", Boot: "b", PID: pid}, Gone: func(lock.Process) bool { return false }}
}

func (f *runFleet) call(what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, what)
}

func (f *runFleet) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// lockHolder is the target recorded by whoever holds the service's lock,
// or "free".
func (f *runFleet) lockHolder() string {
	h, err := f.locker.Read(context.Background(), lock.Name("prod", "www"))
	if err != nil {
		f.t.Fatal(err)
	}
	if h == nil {
		return "free"
	}
	return h.Target
}

// notifier records the events it is asked to send.
type recordingNotifier struct{ f *runFleet }

func (n recordingNotifier) Notify(_ context.Context, run notify.Run) {
	n.f.call("notify " + run.Event)
}
func (n recordingNotifier) Wait() {}

// pipeline is a deploy of www@target to the fleet, with env's settings.
func (f *runFleet) pipeline(target string, env config.Environment, out *bytes.Buffer) *Pipeline {
	env.Lock = config.Lock{Host: "lb1", Dir: f.records}
	svc := config.Service{ContainerName: "www", Port: 8080, BatchSize: 1}
	tgt, err := rollout.ParseTarget("www@"+target, testRegistry, testImage, false)
	if err != nil {
		f.t.Fatal(err)
	}
	return &Pipeline{
		Options: DeployOptions{Config: &config.Config{Path: "gantry.yml"}, Env: "prod", Target: "www@" + target, Out: out},
		Service: "www", Spec: svc, Env: env,
		Deps: RunDeps{
			Locker: f.locker,
			Observe: func(context.Context) ([]rollout.HostSnapshot, error) {
				f.call("observe")
				return append([]rollout.HostSnapshot(nil), f.hosts...), nil
			},
			Maintenance: func(context.Context) (map[string]inventory.Maintenance, error) { return nil, nil },
			Plan: func(snap []rollout.HostSnapshot, _ map[string]string) (rollout.Plan, error) {
				f.call("plan")
				return rollout.PlanDeployWith(tgt, snap, rollout.SpreadRules{BatchSize: 1, MinInService: 1, Serving: len(snap)}, rollout.Strategy{})
			},
			Preflight: func(context.Context, rollout.Plan, []rollout.HostSnapshot) error {
				f.call("preflight")
				return f.preflightErr
			},
			RunHook: func(_ context.Context, name, _ string, _ notify.Run) error {
				f.call("hook " + name)
				return f.hookErr[name]
			},
			Notifier: func() Notifier { return recordingNotifier{f} },
			Execute: func(_ context.Context, plan rollout.Plan, _ string, _ func(rollout.Event)) *rollout.Report {
				f.call("execute")
				f.lockedBy = f.lockHolder()
				return f.execute(plan)
			},
			Verify:  func(context.Context, *rollout.Report) { f.call("verify") },
			Records: &shell.LocalRunner{},
			Prune: func(context.Context) error {
				f.call("prune")
				return nil
			},
		},
	}
}

// execute is the executor's report of plan: every host deployed, but the
// one to fail, which failed and was put back (then the run stops).
func (f *runFleet) execute(plan rollout.Plan) *rollout.Report {
	rep := &rollout.Report{Target: plan.Target}
	failed := false
	for _, b := range plan.Batches {
		for _, hp := range b.Hosts {
			f.executed = append(f.executed, hp.Host.Name)
			r := &rollout.HostResult{Host: hp.Host.Name, From: hp.From, To: hp.To.Tag, Ended: hp.From, InService: true, Outcome: rollout.HostNotStarted}
			switch {
			case failed:
			case hp.Host.Name == f.fail:
				failed = true
				r.Outcome, r.Err = rollout.HostFailedReverted, errors.New("health check failed")
				rep.Err = r.Err
			default:
				r.Outcome, r.Ended = rollout.HostDeployed, hp.To.Tag
			}
			rep.Hosts = append(rep.Hosts, r)
		}
	}
	return rep
}

// history is the service's recorded trail.
func (f *runFleet) history() []history.Entry {
	entries, err := history.Store{Runner: &shell.LocalRunner{}, Dir: f.records}.Read(context.Background(), "prod", "www")
	if err != nil {
		f.t.Fatal(err)
	}
	return entries
}

// assertCalls checks the calls in order, but for the prune: it runs while
// the history is recorded and the outcome told, so it is only checked to
// come after verify.
func assertCalls(t *testing.T, f *runFleet, want ...string) {
	t.Helper()
	got := f.called()
	if slices.Contains(want, "prune") {
		at, verified := slices.Index(got, "prune"), slices.Index(got, "verify")
		if at < 0 || verified < 0 || at < verified {
			t.Errorf("calls:\n  %s\nwant a prune after verify", strings.Join(got, "\n  "))
		}
		want = slices.DeleteFunc(slices.Clone(want), func(c string) bool { return c == "prune" })
		got = slices.DeleteFunc(got, func(c string) bool { return c == "prune" })
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("calls:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

var hooks = config.Environment{Hooks: config.Hooks{PreDeploy: "pre", PostDeploy: "post"}}

// A deploy that succeeds: under the lock (released after), hooks around
// it in order, both notifications, one history record, then prune.
func TestPipelineDeploySucceeds(t *testing.T) {
	f := newRunFleet(t, "a", "b")
	var out bytes.Buffer
	rep, err := f.pipeline("v2", hooks, &out).Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !rep.OK() {
		t.Errorf("report not OK: %v", rep.Err)
	}
	assertCalls(t, f, "observe", "plan", "preflight", "hook pre_deploy", "notify started", "execute", "verify", "notify succeeded", "hook post_deploy", "prune")
	if f.lockedBy != "www@v2" {
		t.Errorf("while executing, the lock was held by %q, want the run (www@v2)", f.lockedBy)
	}
	if got := f.lockHolder(); got != "free" {
		t.Errorf("after the run the lock is held by %q, want free", got)
	}
	if !reflect.DeepEqual(f.executed, []string{"host1", "host2"}) {
		t.Errorf("executed %v, want host1, host2", f.executed)
	}
	entries := f.history()
	if len(entries) != 1 {
		t.Fatalf("history has %d entries, want 1: %+v", len(entries), entries)
	}
	e := entries[0]
	if e.Outcome != string(rollout.OutcomeSucceeded) || e.Target != "www@v2" || len(e.Hosts) != 2 || e.Hosts[0].Outcome != "deployed" {
		t.Errorf("history entry: %+v", e)
	}
	// The run's own phases, in order, for --verbose and --report.
	var phases []string
	for _, p := range rep.RunPhases {
		phases = append(phases, p.Name)
	}
	if got := strings.Join(phases, " "); got != "observe plan lock preflight hooks execute verify finish" {
		t.Errorf("run phases %q", got)
	}
}

// A deploy that fails and is reverted: the post hook and the outcome
// notification still happen, history says reverted, and nothing is pruned.
func TestPipelineFailedRunIsRecordedAndNotPruned(t *testing.T) {
	f := newRunFleet(t, "a", "b")
	f.fail = "host1"
	var out bytes.Buffer
	rep, err := f.pipeline("v2", hooks, &out).Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.OK() {
		t.Error("report OK, want a failure")
	}
	assertCalls(t, f, "observe", "plan", "preflight", "hook pre_deploy", "notify started", "execute", "verify", "notify reverted", "hook post_deploy")
	if entries := f.history(); len(entries) != 1 || entries[0].Outcome != string(rollout.OutcomeReverted) {
		t.Errorf("history: %+v, want one entry, reverted", entries)
	}
	if got := f.lockHolder(); got != "free" {
		t.Errorf("lock held by %q after the run, want free", got)
	}
}

// Another deployer holds the lock: the run is refused before it changes
// anything (it only read the hosts and planned, which change nothing), and
// the other's lock stays.
func TestPipelineRefusedWhenLockHeld(t *testing.T) {
	f := newRunFleet(t, "a", "b")
	if _, err := f.newLocker(2).Acquire(context.Background(), lock.Request{Name: lock.Name("prod", "www"), Target: "www@other"}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err := f.pipeline("v2", hooks, &out).Run(context.Background())
	if !errors.Is(err, lock.ErrHeld) {
		t.Fatalf("err = %v, want lock.ErrHeld", err)
	}
	assertCalls(t, f, "observe", "plan")
	if got := f.lockHolder(); got != "www@other" {
		t.Errorf("lock held by %q, want the other deployer's", got)
	}
	if entries := f.history(); len(entries) != 0 {
		t.Errorf("history: %+v, want none", entries)
	}
}

// A single point of failure in production is refused: nothing planned,
// hooked, notified, executed, recorded or pruned, and the lock is freed.
func TestPipelinePolicyRefusalChangesNothing(t *testing.T) {
	f := newRunFleet(t, "a", "a")
	env := hooks
	env.Production = true
	var out bytes.Buffer
	_, err := f.pipeline("v2", env, &out).Run(context.Background())
	if !errors.Is(err, rollout.ErrPreflight) || !strings.Contains(err.Error(), "prod is a production environment and the service's 2 hosts are all in zone(s) a") {
		t.Fatalf("err = %v, want a pre-flight refusal naming the single zone", err)
	}
	assertCalls(t, f, "observe")
	if got := f.lockHolder(); got != "free" {
		t.Errorf("lock held by %q after the refusal, want free", got)
	}
	if entries := f.history(); len(entries) != 0 {
		t.Errorf("history: %+v, want none", entries)
	}

	// Outside production it is a warning, and the run goes on.
	f = newRunFleet(t, "a", "a")
	out.Reset()
	if _, err := f.pipeline("v2", hooks, &out).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "warning: single point of failure: the service's 2 hosts are all in zone(s) a") {
		t.Errorf("output lacks the warning:\n%s", out.String())
	}
}

// A failing pre-deploy hook stops the run before any change: no
// notification, no execution, no post hook, no history.
func TestPipelineFailingPreHookStopsTheRun(t *testing.T) {
	f := newRunFleet(t, "a", "b")
	f.hookErr = map[string]error{"pre_deploy": errors.New("hook pre_deploy exited 1")}
	var out bytes.Buffer
	_, err := f.pipeline("v2", hooks, &out).Run(context.Background())
	if !errors.Is(err, rollout.ErrPreflight) || !strings.Contains(err.Error(), "environments.prod.hooks.pre_deploy in gantry.yml); nothing was changed") {
		t.Fatalf("err = %v, want the hook's refusal", err)
	}
	assertCalls(t, f, "observe", "plan", "preflight", "hook pre_deploy")
	if got := f.lockHolder(); got != "free" {
		t.Errorf("lock held by %q, want free", got)
	}
	if entries := f.history(); len(entries) != 0 {
		t.Errorf("history: %+v, want none", entries)
	}
}

// A failed pre-flight check: the plan is shown, no hook runs.
func TestPipelinePreflightFailureRunsNoHook(t *testing.T) {
	f := newRunFleet(t, "a", "b")
	f.preflightErr = errors.New("host1: 10 MB free")
	var out bytes.Buffer
	_, err := f.pipeline("v2", hooks, &out).Run(context.Background())
	if !errors.Is(err, rollout.ErrPreflight) {
		t.Fatalf("err = %v, want pre-flight", err)
	}
	assertCalls(t, f, "observe", "plan", "preflight")
	if !strings.Contains(out.String(), "deploy www@v2") {
		t.Errorf("the plan was not shown:\n%s", out.String())
	}
}

// Every host already runs the target: no hooks, no webhooks, no lock
// left, no history entry (the history is of changes).
func TestPipelineNothingToChange(t *testing.T) {
	f := newRunFleet(t, "a", "b")
	var out bytes.Buffer
	rep, err := f.pipeline("v1", hooks, &out).Run(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("run: %v", err)
	}
	// Nothing to check, re-observe, record or prune.
	assertCalls(t, f, "observe", "plan", "execute")
	if entries := f.history(); len(entries) != 0 {
		t.Errorf("history: %+v, want none", entries)
	}
}

// A dry run takes no lock, shows the plan and changes nothing.
func TestPipelineDryRun(t *testing.T) {
	f := newRunFleet(t, "a", "b")
	var out bytes.Buffer
	p := f.pipeline("v2", hooks, &out)
	p.Options.DryRun = true
	rep, err := p.Run(context.Background())
	if err != nil || rep != nil {
		t.Fatalf("dry run: %v, %v", rep, err)
	}
	assertCalls(t, f, "observe", "plan", "preflight")
	if !strings.Contains(out.String(), "dry run: pre-flight checks passed; nothing was changed") {
		t.Errorf("output:\n%s", out.String())
	}
}

// A rollback records where it sends each host before its first step (so a
// cut-off one can be resumed), clears that when it ends, runs the rollback
// hooks and records where it went.
func TestPipelineRollbackRecordsItsIntent(t *testing.T) {
	f := newRunFleet(t, "a", "b")
	env := config.Environment{Hooks: config.Hooks{PreDeploy: "pre", PreRollback: "pre-rb", PostRollback: "post-rb"}}
	var out bytes.Buffer
	p := f.pipeline("v2", env, &out)
	p.Options.Target = "www@previous (rollback)"
	plan := p.Deps.Plan
	p.Deps.Plan = func(snap []rollout.HostSnapshot, resume map[string]string) (rollout.Plan, error) {
		pl, err := plan(snap, resume)
		pl.Kind = "rollback"
		return pl, err
	}
	var intent *rollbackIntent
	execute := p.Deps.Execute
	p.Deps.Execute = func(ctx context.Context, pl rollout.Plan, id string, ev func(rollout.Event)) *rollout.Report {
		var err error
		if intent, err = readIntent(ctx, &shell.LocalRunner{}, f.records, "prod", "www"); err != nil {
			t.Fatal(err)
		}
		return execute(ctx, pl, id, ev)
	}
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if intent == nil || len(intent.Hosts) != 2 || intent.Hosts["host1"] != testRegistry+"/"+testImage+":v2" {
		t.Errorf("while executing, the recorded intent was %+v, want both hosts to v2", intent)
	}
	if left, err := readIntent(context.Background(), &shell.LocalRunner{}, f.records, "prod", "www"); err != nil || left != nil {
		t.Errorf("after the run the intent is %+v (%v), want none", left, err)
	}
	assertCalls(t, f, "observe", "plan", "preflight", "hook pre_rollback", "notify started", "execute", "verify", "notify succeeded", "hook post_rollback", "prune")
	if entries := f.history(); len(entries) != 1 || entries[0].Kind != "rollback" || entries[0].Target != "www@v2" {
		t.Errorf("history: %+v, want a rollback to www@v2", entries)
	}
}

// freeForStore is the fleet's lock store, but its takes of a free lock say
// it had been free for freeFor (the lock machine's release mark).
type freeForStore struct {
	lock.DirStore
	freeFor time.Duration
}

// countingStore is the fleet's lock store, counting the takes.
type countingStore struct {
	lock.DirStore
	takes *int
}

func (s countingStore) Take(ctx context.Context, name string, info lock.Info, replace *lock.Takeover) (*lock.Holder, bool, error) {
	*s.takes++
	return s.DirStore.Take(ctx, name, info, replace)
}

// A run that changes nothing takes no lock when nobody holds it; while
// another run holds it, it waits for the lock like any run (refused here,
// with no --lock-wait): what it read may be changing.
func TestPipelineNothingToChangeTakesNoLock(t *testing.T) {
	f := newRunFleet(t, "a", "b")
	takes := 0
	f.locker.Store = countingStore{DirStore: f.locker.Store.(lock.DirStore), takes: &takes}
	var out bytes.Buffer
	rep, err := f.pipeline("v1", hooks, &out).Run(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if takes != 0 {
		t.Errorf("the lock was taken %d times, want none", takes)
	}
	assertCalls(t, f, "observe", "plan", "execute")

	if _, err := f.newLocker(2).Acquire(context.Background(), lock.Request{Name: lock.Name("prod", "www"), Target: "www@other"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.pipeline("v1", hooks, &out).Run(context.Background())
	if !errors.Is(err, lock.ErrHeld) {
		t.Errorf("nothing to change while another run holds the lock: err = %v, want lock.ErrHeld", err)
	}
	if takes != 1 {
		t.Errorf("the lock was asked for %d times, want once", takes)
	}
}

func (s freeForStore) Take(ctx context.Context, name string, info lock.Info, replace *lock.Takeover) (*lock.Holder, bool, error) {
	h, won, err := s.DirStore.Take(ctx, name, info, replace)
	if h != nil && replace == nil {
		h.FreeFor = s.freeFor
	}
	return h, won, err
}

// The hosts are read while the lock is taken; that reading stands only
// when nobody held the lock since it began, else they are read again
// under the lock, before anything is planned.
func TestPipelineObservesAgainWhenTheLockWasHeldMeanwhile(t *testing.T) {
	for _, c := range []struct {
		name     string
		freeFor  time.Duration
		observes int
	}{
		{"never held", lock.NeverHeld, 1},
		{"free for an hour", time.Hour, 1},
		{"released a millisecond ago", time.Millisecond, 2},
		{"release not known", 0, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newRunFleet(t, "a", "b")
			store := f.locker.Store.(lock.DirStore)
			f.locker.Store = freeForStore{DirStore: store, freeFor: c.freeFor}
			var out bytes.Buffer
			p := f.pipeline("v2", config.Environment{}, &out)
			p.Deps.StartChecks = func(context.Context) func() {
				f.call("checks")
				return func() { f.call("checks stopped") }
			}
			if _, err := p.Run(context.Background()); err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			// The early pre-flight facts are read again with the hosts.
			want := []string{"observe", "plan", "checks", "checks stopped", "observe", "plan", "checks"}
			if c.observes == 1 {
				want = want[:3]
			}
			want = append(want, "preflight", "notify started", "execute", "verify", "notify succeeded", "prune", "checks stopped")
			assertCalls(t, f, want...)
			if f.lockedBy != "www@v2" {
				t.Errorf("executed under the lock of %q, want this run's", f.lockedBy)
			}
		})
	}
}
