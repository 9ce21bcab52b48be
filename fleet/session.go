package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/discovery"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lock"
	"github.com/gantry-dev/gantry/remote"
	"github.com/gantry-dev/gantry/rollout"
)

// Session is what one command opened on an environment: the hosts
// discovery listed, the SSH connections to them and to the load balancers,
// and the records machine (deploy locks, history, decommission and
// maintenance records), with the locks the command took. Open opens it;
// whoever opened it is the one owner of closing it, and Close frees all of
// it, locks first.
type Session struct {
	Config  *config.Config
	EnvName string
	Env     config.Environment
	Out     io.Writer
	// All are the environment's hosts as discovery lists them; Hosts those
	// the command is about (all of them, or a service's less the
	// decommissioned ones).
	All, Hosts []inventory.Host
	// Decommissioned are the decommission records, read when a service's
	// hosts were asked for.
	Decommissioned map[string]inventory.Decommission
	// Conns are the open connections (nil when none were asked for);
	// Failed says, by machine name, why one could not be opened
	// (DialEach only).
	Conns  *Connections
	Failed map[string]error

	records  *remote.Conn
	releases []func() error
}

// Dial says which connections a command opens.
type Dial int

const (
	// DialNone opens no connection to hosts or load balancers.
	DialNone Dial = iota
	// DialAll opens every one, or fails naming each machine that could
	// not be reached.
	DialAll
	// DialEach opens those that can be opened and says why the others
	// could not (Session.Failed).
	DialEach
)

// Needs are what a command needs opened.
type Needs struct {
	// Discover lists the environment's hosts (Session.All, Session.Hosts).
	Discover bool
	// Service narrows Session.Hosts to the service's hosts less the
	// decommissioned ones, refusing when none is left (implies Discover
	// and Records).
	Service string
	// Select, if set, narrows the hosts connected to (Session.Hosts).
	Select func(all []inventory.Host) ([]inventory.Host, error)
	// Dial opens connections to Session.Hosts and, unless HostsOnly,
	// to every load balancer.
	Dial      Dial
	HostsOnly bool
	// Classify classifies a failure to connect (DialAll) or to reach the
	// records machine (nil: returned as is).
	Classify func(error) error
	// Records connects to the records machine.
	Records bool
	// OnLB, if set, is given each load balancer's connection the moment
	// it opens (from the goroutine that dialled it), while the other
	// machines are still being dialled (a run on one service only).
	// Its reads go through reads, which runs those given together in one
	// session.
	OnLB func(name string, reads *remote.Batch)
	// OnHost, likewise, is given each of the service's hosts the moment
	// its Docker daemon answers (a decommissioned one too: what is started
	// on it must only read).
	OnHost func(h inventory.Host, dh *Host)
}

// Open opens what need asks for on environment envName, in the order a
// command needs it: discovery (its warnings to out), the records machine
// when a service's decommissioned hosts must be left out, the connections,
// then the records machine (reusing a connection to it when there is one).
// On an error everything opened is closed. Errors wrap ErrRefused (bad
// input) or rollout.ErrPreflight as a run reports them.
func Open(ctx context.Context, cfg *config.Config, envName string, out io.Writer, need Needs) (*Session, error) {
	env, err := cfg.Environment(envName)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	s := &Session{Config: cfg, EnvName: envName, Env: env, Out: out}
	ok := false
	defer func() {
		if !ok {
			_ = s.Close()
		}
	}()
	if need.Discover || need.Service != "" {
		if s.All, err = discoverHosts(ctx, cfg, env, out); err != nil {
			return nil, err
		}
		s.Hosts = s.All
	}
	connEnv := env
	if need.HostsOnly {
		connEnv.LoadBalancers = nil
	}
	if need.Service != "" && need.Select == nil && need.Dial != DialNone {
		// Every machine at once, the decommission records read meanwhile.
		if err := s.openService(ctx, need, connEnv); err != nil {
			return nil, err
		}
		ok = true
		return s, nil
	}
	if need.Service != "" {
		if s.Hosts, err = s.serviceHosts(ctx, need.Service); err != nil {
			return nil, err
		}
	}
	if need.Select != nil {
		if s.Hosts, err = need.Select(s.All); err != nil {
			return nil, err
		}
	}
	switch need.Dial {
	case DialAll:
		if s.Conns, err = Connect(ctx, cfg, connEnv, s.Hosts); err != nil {
			return nil, need.classify(err)
		}
	case DialEach:
		if s.Conns, s.Failed, err = ConnectEach(ctx, cfg, connEnv, s.Hosts); err != nil {
			return nil, err
		}
	}
	if need.Records && s.records == nil {
		if s.Conns != nil {
			s.records, err = s.Conns.lockMachine(ctx, cfg, env)
		} else {
			s.records, err = dialMachine(ctx, cfg, env, env.Lock.Host)
		}
		if err != nil {
			return nil, need.classify(err)
		}
	}
	ok = true
	return s, nil
}

func (n Needs) classify(err error) error {
	if n.Classify == nil {
		return err
	}
	return n.Classify(err)
}

// asPreflight classifies a failure as a pre-flight one: nothing changed.
func asPreflight(err error) error { return fmt.Errorf("%w: %w", rollout.ErrPreflight, err) }

// serviceHosts lists the hosts of a service, less the decommissioned ones,
// reading the decommission records from the records machine (opened here).
func (s *Session) serviceHosts(ctx context.Context, svcName string) ([]inventory.Host, error) {
	hosts, err := s.serviceCandidates(svcName)
	if err != nil {
		return nil, err
	}
	conn, err := dialMachine(ctx, s.Config, s.Env, s.Env.Lock.Host)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
	}
	s.records = conn
	if err := s.readDecommissioned(ctx, s.records); err != nil {
		return nil, err
	}
	return s.notDecommissioned(svcName, hosts)
}

// serviceCandidates are the hosts discovery lists for the service, refused
// when there are none.
func (s *Session) serviceCandidates(svcName string) ([]inventory.Host, error) {
	hosts := discovery.ForService(s.All, svcName)
	if len(hosts) == 0 {
		return nil, fmt.Errorf("%w: no host of environment %s runs service %s (add it to a host's services: in %s)", ErrRefused, s.EnvName, svcName, s.Config.Path)
	}
	return hosts, nil
}

// readDecommissioned reads the decommission records from the records
// machine (s.records, open).
func (s *Session) readDecommissioned(ctx context.Context, reads inventory.Runner) error {
	d := s.decommissions()
	d.Runner = reads
	gone, err := d.List(ctx)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", rollout.ErrPreflight, s.Env.Lock.Host, err)
	}
	s.Decommissioned = gone
	return nil
}

// StillInService reads the decommission records again (through reads,
// on the records machine) and returns hosts
// less those decommissioned since (each said skipped), closing their
// connections: a run that waited for the lock while `gantry decommission`
// held it must not deploy to the host it took out. A host recommissioned
// meanwhile is not added back (this run did not connect it).
func (s *Session) StillInService(ctx context.Context, reads inventory.Runner, svcName string, hosts []inventory.Host) ([]inventory.Host, error) {
	if err := s.readDecommissioned(ctx, reads); err != nil {
		return nil, err
	}
	keep, err := s.notDecommissioned(svcName, hosts)
	if err != nil {
		return nil, err
	}
	s.closeDecommissioned()
	s.Hosts = keep
	return keep, nil
}

// closeDecommissioned closes the connections to the hosts s.Decommissioned
// lists.
func (s *Session) closeDecommissioned() {
	if s.Conns == nil {
		return
	}
	for name := range s.Decommissioned {
		if h, ok := s.Conns.Hosts[name]; ok {
			_ = h.Docker.Close()
			_ = h.Conn.Close()
			delete(s.Conns.Hosts, name)
		}
	}
}

// notDecommissioned is hosts less those s.Decommissioned lists, each said
// skipped; refused when none is left.
func (s *Session) notDecommissioned(svcName string, hosts []inventory.Host) ([]inventory.Host, error) {
	var keep []inventory.Host
	for _, h := range hosts {
		if rec, ok := s.Decommissioned[h.Name]; ok {
			fmt.Fprintf(s.Out, "skip %s: decommissioned by %s on %s\n", h.Name, rec.Who, rec.Since.Format("2006-01-02 15:04"))
			continue
		}
		keep = append(keep, h)
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("%w: every host of service %s in %s is decommissioned", rollout.ErrPreflight, svcName, s.EnvName)
	}
	return keep, nil
}

// openService opens what a run on one service needs, all at once: the
// service's hosts, the load balancers (of connEnv) and the records machine
// are dialled together, and the decommission records are read as soon as
// the records machine answers, while the hosts are still being dialled.
// A decommissioned host's connection is then closed, and a failure to
// reach it is no failure (it may be gone for good).
func (s *Session) openService(ctx context.Context, need Needs, connEnv config.Environment) error {
	cands, err := s.serviceCandidates(need.Service)
	if err != nil {
		return err
	}
	recName := s.Env.Lock.Host
	recIsLB := false
	for _, lb := range connEnv.LoadBalancers {
		recIsLB = recIsLB || lb.Name == recName
	}
	var recErr error
	gone := make(chan struct{})
	readOn := func(conn *remote.Conn, reads inventory.Runner) {
		defer close(gone)
		s.records = conn
		recErr = s.readDecommissioned(ctx, reads)
	}
	onLB := func(name string, conn *remote.Conn) {
		// The first reads on a load balancer, this run's and the
		// decommission records, go in one session.
		reads := remote.NewBatch(conn, firstReadsWait)
		if need.OnLB != nil {
			need.OnLB(name, reads)
		}
		if recIsLB && name == recName {
			reads.Expect(1)
			go readOn(conn, reads)
		}
	}
	if !recIsLB {
		go func() {
			conn, err := dialMachine(ctx, s.Config, s.Env, recName)
			if err != nil {
				recErr = fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
				close(gone)
				return
			}
			readOn(conn, conn)
		}()
	}
	conns, failed, err := connectEach(ctx, s.Config, connEnv, cands, onLB, need.OnHost)
	// The records are read unless their load balancer could not be dialled.
	reading := !recIsLB || (err == nil && conns.LBs[recName] != nil)
	if reading {
		<-gone
	}
	if err != nil {
		return err
	}
	s.Conns = conns
	if reading && recErr != nil {
		return recErr
	}
	if !reading {
		// Its failure is listed with the others below.
		s.Hosts = cands
	} else if s.Hosts, err = s.notDecommissioned(need.Service, cands); err != nil {
		return err
	}
	s.closeDecommissioned()
	for name := range s.Decommissioned {
		delete(failed, name)
	}
	if need.Dial == DialEach {
		s.Failed = failed
		return nil
	}
	if err := failures(failed); err != nil {
		return need.classify(err)
	}
	return nil
}

// Records is the connection to the records machine (nil unless asked for).
func (s *Session) Records() *remote.Conn { return s.records }

// Locker is the environment's deploy locker, on the records machine.
func (s *Session) Locker() *lock.Locker { return newLocker(s.records, s.Env) }

// decommissions are the environment's decommission records.
func (s *Session) decommissions() inventory.Decommissions {
	return inventory.Decommissions{Runner: s.records, Dir: s.Env.Lock.Dir, Env: s.EnvName}
}

// maintenances are the environment's maintenance records.
func (s *Session) maintenances() inventory.Maintenances {
	return inventory.Maintenances{Runner: s.records, Dir: s.Env.Lock.Dir, Env: s.EnvName}
}

// HoldLocks takes the deploy lock of each service, in the order given
// (sorted by the callers, so two commands taking several locks never wait
// on each other in a circle), and keeps them renewed until Close. req
// names what the locks record; its Name is set per service. The returned
// context ends when any lease is lost. On an error the locks already
// taken are freed.
func (s *Session) HoldLocks(ctx context.Context, services []string, req lock.Request) (context.Context, error) {
	held, release, err := holdServiceLocks(ctx, s.Locker(), s.EnvName, services, req, s.Out)
	if err != nil {
		return ctx, err
	}
	s.releases = append(s.releases, release)
	return held, nil
}

// Close releases the locks the session holds (last taken first), then
// closes every connection, and returns every error on the way.
func (s *Session) Close() error {
	var errs []error
	for i := len(s.releases) - 1; i >= 0; i-- {
		errs = append(errs, s.releases[i]())
	}
	s.releases = nil
	if s.Conns != nil {
		errs = append(errs, s.Conns.closeAll())
		s.Conns = nil
	}
	if s.records != nil {
		errs = append(errs, s.records.Close())
		s.records = nil
	}
	return errors.Join(errs...)
}

// Done closes the session and prints what went wrong closing it as
// warnings: the command's own result stands.
func (s *Session) Done() {
	if err := s.Close(); err != nil {
		for _, e := range unjoin(err) {
			fmt.Fprintf(s.Out, "warning: %v\n", e)
		}
	}
}

// unjoin lists the errors errors.Join joined.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
