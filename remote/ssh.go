package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/gantry-dev/gantry/internal/shell"
)

// ErrHostKey is returned (wrapped) when a host's key is unknown or differs
// from the one in known_hosts.
var ErrHostKey = errors.New("host key verification failed")

// ErrUnreachable is returned (wrapped) when a connection broke and every
// redial failed: the host stays unreachable.
var ErrUnreachable = errors.New("host unreachable")

// Defaults for the keepalive and redial settings of SSHConfig left at zero.
const (
	DefaultKeepaliveInterval = 3 * time.Second
	DefaultKeepaliveCountMax = 3
	DefaultRedialAttempts    = 4
	DefaultRedialBackoff     = 500 * time.Millisecond
	// DefaultMaxSessions stays below OpenSSH's default MaxSessions (10).
	DefaultMaxSessions = 8
)

// SSHConfig says how to log in to hosts.
type SSHConfig struct {
	User           string
	IdentityFile   string
	UseAgent       bool
	KnownHostsFile string
	ConnectTimeout time.Duration
	// JumpHost is an optional bastion "[user@]host[:port]" (ProxyJump).
	JumpHost string
	// JumpPort is the default port of the jump host.
	JumpPort int
	// KeepaliveInterval is how often a keepalive@openssh.com request is
	// sent on every connection (the jump host's too); KeepaliveCountMax is
	// how many intervals one may go unanswered before the connection
	// counts as dead and is closed, so that everything using it fails at
	// once instead of hanging.
	KeepaliveInterval time.Duration
	KeepaliveCountMax int
	// RedialAttempts bounds the dials made to replace a broken connection;
	// RedialBackoff is the pause after the first failed one, doubled after
	// each next one.
	RedialAttempts int
	RedialBackoff  time.Duration
	// MaxSessions bounds the sessions (commands) open at once on one
	// connection; more wait for a free one. sshd refuses sessions past its
	// MaxSessions, 10 by default.
	MaxSessions int
	// Persist, when positive, keeps each connection open after the
	// command that dialled it ends, in a keeper process (KeeperCommand),
	// until no command has used the keeper for that long: the next
	// command on the same machines skips the handshakes (as OpenSSH's
	// ControlPersist). PersistDir holds the keepers' sockets (default:
	// DefaultPersistDir). Without KeeperCommand, nothing is kept.
	Persist       time.Duration
	PersistDir    string
	KeeperCommand []string
	// KeeperWarn, if set, is told why a connection was dialled directly
	// although Persist is set (no keeper could be reached or started):
	// the command works as without a keeper, but the user asked for one.
	// Every connection that falls back tells it.
	KeeperWarn func(error) `json:"-"`
}

// kept reports whether connections go through a keeper.
func (cfg SSHConfig) kept() bool { return cfg.Persist > 0 && len(cfg.KeeperCommand) > 0 }

// withDefaults fills the keepalive and redial settings left at zero.
func (cfg SSHConfig) withDefaults() SSHConfig {
	if cfg.KeepaliveInterval <= 0 {
		cfg.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if cfg.KeepaliveCountMax <= 0 {
		cfg.KeepaliveCountMax = DefaultKeepaliveCountMax
	}
	if cfg.RedialAttempts <= 0 {
		cfg.RedialAttempts = DefaultRedialAttempts
	}
	if cfg.RedialBackoff <= 0 {
		cfg.RedialBackoff = DefaultRedialBackoff
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	return cfg
}

// Endpoint is one machine to reach: a name for messages and host:port.
type Endpoint struct {
	Name string
	Addr string // host:port of its sshd
}

// Conn is one SSH connection to one host, reused for everything on it.
// When the connection breaks (the peer closed it, or it stopped answering
// keepalives) its next use redials it, through the jump host if there is
// one, verifying the host key again; concurrent users share that redial.
type Conn struct {
	Endpoint Endpoint
	cfg      SSHConfig
	auth     auth
	jumpEP   Endpoint // zero without a jump host
	jumpUser string

	mu       sync.Mutex
	target   *peer
	jump     *peer
	redial   *redialCall
	closed   bool
	onRedial []func()
	// sessions holds a token per session open (MaxSessions at most).
	sessions chan struct{}
	// idle are the commands started ahead (Start) still waiting for their
	// input, the longest-waiting first: a Run that finds no free session
	// abandons one. Guarded by mu.
	idle []*started
}

// redialCall is one redial in flight; waiters read err once done is closed.
type redialCall struct {
	done chan struct{}
	err  error
}

// Dial opens an SSH connection to ep, verifying its host key against the
// known_hosts file.
func Dial(ctx context.Context, cfg SSHConfig, ep Endpoint) (*Conn, error) {
	auth, err := newAuth(cfg)
	if err != nil {
		return nil, err
	}
	c := &Conn{Endpoint: ep, cfg: cfg.withDefaults(), auth: auth}
	c.sessions = make(chan struct{}, c.cfg.MaxSessions)
	if cfg.JumpHost != "" {
		c.jumpUser, c.jumpEP = jumpEndpoint(cfg)
	}
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func jumpEndpoint(cfg SSHConfig) (string, Endpoint) {
	user, hostport := cfg.User, cfg.JumpHost
	if u, h, ok := strings.Cut(hostport, "@"); ok {
		user, hostport = u, h
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(hostport, fmt.Sprint(cfg.JumpPort))
	}
	return user, Endpoint{Name: "jump host " + hostport, Addr: hostport}
}

// connect dials the host (and the jump host, unless its connection is
// still alive) and makes the result the connection in use.
func (c *Conn) connect(ctx context.Context) error {
	if c.cfg.kept() {
		// Through the keeper, which dials the host (and the jump host)
		// itself; only when no keeper can be had is the host dialled
		// directly.
		client, key, err := dialKept(ctx, c.cfg, c.Endpoint)
		if err == nil {
			return c.use(newPeer(client, c.cfg, key), nil)
		}
		if !errors.Is(err, errNoKeeper) {
			return err
		}
		if c.cfg.KeeperWarn != nil && ctx.Err() == nil {
			c.cfg.KeeperWarn(err)
		}
	}
	c.mu.Lock()
	jump := c.jump
	c.mu.Unlock()
	var via *ssh.Client
	if c.jumpEP.Addr != "" {
		if jump == nil || jump.dead() {
			client, _, err := dialSSH(ctx, c.cfg, c.auth, c.jumpUser, c.jumpEP, nil)
			if err != nil {
				return err
			}
			jump = newPeer(client, c.cfg, nil)
		}
		via = jump.client
	}
	client, key, err := dialSSH(ctx, c.cfg, c.auth, c.cfg.User, c.Endpoint, via)
	if err != nil {
		// A jump connection that could not carry the dial (rather than
		// the target refusing it) is not trusted with the next attempt.
		var refused *ssh.OpenChannelError
		if jump != nil && !errors.Is(err, ErrHostKey) && !errors.As(err, &refused) {
			jump.kill(fmt.Errorf("dialling %s through it failed: %w", c.Endpoint.Addr, err))
		}
		return err
	}
	return c.use(newPeer(client, c.cfg, key), jump)
}

// use makes target (and jump, nil without a jump host) the connection in
// use, unless c was closed meanwhile.
func (c *Conn) use(target, jump *peer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		target.kill(net.ErrClosed)
		if jump != nil {
			jump.kill(net.ErrClosed)
		}
		return fmt.Errorf("%s: ssh connection closed", c.Endpoint.Name)
	}
	if old := c.jump; old != nil && old != jump {
		old.kill(errors.New("replaced"))
	}
	c.target, c.jump = target, jump
	return nil
}

// current returns the live connection, redialling it first if it broke.
func (c *Conn) current(ctx context.Context) (*peer, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, fmt.Errorf("%s: ssh connection closed", c.Endpoint.Name)
		}
		if t := c.target; t != nil && !t.dead() {
			c.mu.Unlock()
			return t, nil
		}
		call := c.redial
		mine := call == nil
		if mine {
			call = &redialCall{done: make(chan struct{})}
			c.redial = call
		}
		c.mu.Unlock()
		if mine {
			call.err = c.redialWithBackoff(ctx)
			c.mu.Lock()
			c.redial = nil
			hooks := slices.Clone(c.onRedial)
			c.mu.Unlock()
			close(call.done)
			if call.err != nil {
				return nil, call.err
			}
			for _, f := range hooks {
				f()
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: waiting for the ssh connection to be redialled: %w", c.Endpoint.Name, ctx.Err())
		case <-call.done:
		}
		// A redial that ended because its caller's context did says
		// nothing about the host: try again under our own context.
		if call.err != nil && !errors.Is(call.err, context.Canceled) && !errors.Is(call.err, context.DeadlineExceeded) {
			return nil, call.err
		}
	}
}

// redialWithBackoff replaces a broken connection: up to RedialAttempts
// dials, pausing RedialBackoff after the first failure and twice as long
// after each next one. A host key problem is not retried.
func (c *Conn) redialWithBackoff(ctx context.Context) error {
	c.mu.Lock()
	why := "connection lost"
	if c.target != nil {
		why = c.target.reason()
	}
	c.mu.Unlock()
	pause := c.cfg.RedialBackoff
	var err error
	for attempt := 1; ; attempt++ {
		err = c.connect(ctx)
		if err == nil || errors.Is(err, ErrHostKey) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: redialling ssh (%s): %w", c.Endpoint.Name, why, ctx.Err())
		}
		if attempt == c.cfg.RedialAttempts {
			break
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: redialling ssh (%s): %w", c.Endpoint.Name, why, ctx.Err())
		case <-t.C:
		}
		pause *= 2
	}
	via := ""
	if c.jumpEP.Addr != "" {
		via = " via " + c.jumpEP.Name
	}
	return fmt.Errorf("%w: %s: ssh connection to %s lost (%s), %d redials%s failed, the last: %w",
		ErrUnreachable, c.Endpoint.Name, c.Endpoint.Addr, why, c.cfg.RedialAttempts, via, err)
}

// OnRedial registers f to be called after each successful redial, e.g. to
// drop pooled connections that went through the old one.
func (c *Conn) OnRedial(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onRedial = append(c.onRedial, f)
}

// peer is one SSH client connection with its keepalive watch.
type peer struct {
	client *ssh.Client
	done   chan struct{} // closed once the transport has ended
	killed atomic.Bool   // set (before done closes) when gantry closes it
	once   sync.Once
	mu     sync.Mutex
	why    error // why it ended
	cfg    SSHConfig
	// hostKey is the key the host showed, verified against known_hosts.
	hostKey ssh.PublicKey
}

func newPeer(client *ssh.Client, cfg SSHConfig, hostKey ssh.PublicKey) *peer {
	p := &peer{client: client, done: make(chan struct{}), cfg: cfg, hostKey: hostKey}
	go func() {
		err := client.Wait()
		p.mu.Lock()
		if p.why == nil {
			if err == nil {
				err = io.EOF
			}
			p.why = fmt.Errorf("closed by the peer: %w", err)
		}
		p.mu.Unlock()
		close(p.done)
	}()
	go p.keepalive()
	return p
}

// keepalive sends a keepalive@openssh.com request every interval and
// closes the connection when one goes unanswered for KeepaliveCountMax
// intervals (or fails), so that every user of it fails fast.
func (p *peer) keepalive() {
	interval, window := p.cfg.KeepaliveInterval, time.Duration(p.cfg.KeepaliveCountMax)*p.cfg.KeepaliveInterval
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var replies chan error
	var sentAt time.Time
	for {
		select {
		case <-p.done:
			return
		case err := <-replies:
			replies = nil
			if err != nil {
				p.kill(fmt.Errorf("keepalive failed: %w", err))
				return
			}
		case now := <-tick.C:
			if replies == nil {
				replies = p.ping()
				sentAt = now
			} else if waited := now.Sub(sentAt); waited >= window {
				p.kill(fmt.Errorf("no answer to keepalives for %s", waited.Round(time.Second)))
				return
			}
		}
	}
}

// ping sends one keepalive request; the channel gets its outcome.
func (p *peer) ping() chan error {
	r := make(chan error, 1)
	go func() {
		// The server answers with success or failure; either is a sign of
		// life. Only a closed transport errs.
		_, _, err := p.client.SendRequest("keepalive@openssh.com", true, nil)
		r <- err
	}()
	return r
}

// alive asks the peer for a sign of life after an operation failed in a
// way that may mean the transport broke, waiting at most the keepalive
// window (or until ctx ends). A peer that does not answer is closed.
func (p *peer) alive(ctx context.Context) bool {
	if p.dead() {
		return false
	}
	t := time.NewTimer(time.Duration(p.cfg.KeepaliveCountMax) * p.cfg.KeepaliveInterval)
	defer t.Stop()
	select {
	case err := <-p.ping():
		if err != nil {
			p.kill(fmt.Errorf("keepalive failed: %w", err))
			return false
		}
		return true
	case <-t.C:
		p.kill(errors.New("no answer to a keepalive after a failed operation"))
		return false
	case <-ctx.Done():
		return !p.dead()
	}
}

// kill closes the connection, recording why.
func (p *peer) kill(why error) {
	p.mu.Lock()
	if p.why == nil {
		p.why = why
	}
	p.mu.Unlock()
	p.killed.Store(true)
	p.once.Do(func() { p.client.Close() })
}

// dead reports whether the connection has ended or is being closed.
func (p *peer) dead() bool {
	if p.killed.Load() {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// reason says why the connection ended.
func (p *peer) reason() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.why == nil {
		return "connection lost"
	}
	return p.why.Error()
}

// dialSSH dials ep (through via, when not nil) and logs in; it returns the
// client and the host key it verified.
func dialSSH(ctx context.Context, cfg SSHConfig, auth auth, user string, ep Endpoint, via *ssh.Client) (*ssh.Client, ssh.PublicKey, error) {
	verify, algos, err := hostKeyCallback(cfg.KnownHostsFile, ep)
	if err != nil {
		return nil, nil, err
	}
	var shown ssh.PublicKey
	hostKeys := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := verify(hostname, remote, key)
		if err == nil {
			shown = key
		}
		return err
	}
	methods, release := auth.methods()
	// The agent is only needed for the handshake's signatures.
	defer release()
	sc := &ssh.ClientConfig{
		User:              user,
		Auth:              methods,
		HostKeyCallback:   hostKeys,
		HostKeyAlgorithms: algos,
		Timeout:           cfg.ConnectTimeout,
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	var nc net.Conn
	if via != nil {
		nc, err = via.DialContext(dctx, "tcp", ep.Addr)
	} else {
		nc, err = (&net.Dialer{}).DialContext(dctx, "tcp", ep.Addr)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: ssh connect to %s: %w", ep.Name, ep.Addr, err)
	}
	// The handshake has no context of its own: bound it by closing the
	// connection when the context ends first.
	stop := context.AfterFunc(dctx, func() { nc.Close() })
	c, chans, reqs, err := ssh.NewClientConn(nc, ep.Addr, sc)
	stop()
	if err != nil {
		nc.Close()
		if errors.Is(err, ErrHostKey) {
			return nil, nil, err
		}
		if dctx.Err() != nil {
			return nil, nil, fmt.Errorf("%s: ssh handshake with %s timed out after %s", ep.Name, ep.Addr, cfg.ConnectTimeout)
		}
		return nil, nil, fmt.Errorf("%s: ssh login to %s as %s: %w", ep.Name, ep.Addr, user, err)
	}
	return ssh.NewClient(c, chans, reqs), shown, nil
}

// auth holds what a dial logs in with: the agent's socket, the key of the
// identity file, or both.
type auth struct {
	agentSock string
	key       ssh.Signer
}

func newAuth(cfg SSHConfig) (auth, error) {
	var a auth
	if cfg.UseAgent {
		a.agentSock = os.Getenv("SSH_AUTH_SOCK")
		if a.agentSock == "" {
			return auth{}, errors.New("ssh.agent is true but SSH_AUTH_SOCK is not set: start ssh-agent or set ssh.identity_file")
		}
	}
	if cfg.IdentityFile != "" {
		pem, err := os.ReadFile(cfg.IdentityFile)
		if err != nil {
			return auth{}, fmt.Errorf("ssh.identity_file: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			var missing *ssh.PassphraseMissingError
			if errors.As(err, &missing) {
				return auth{}, fmt.Errorf("ssh.identity_file %s is encrypted: load it into ssh-agent and set ssh.agent: true", cfg.IdentityFile)
			}
			return auth{}, fmt.Errorf("ssh.identity_file %s: %w", cfg.IdentityFile, err)
		}
		a.key = signer
	}
	return a, nil
}

// methods returns the auth methods of one handshake, and release, which
// closes the agent connections they opened: call it once the handshake is
// over (the agent's signers sign through their connection until then).
func (a auth) methods() (methods []ssh.AuthMethod, release func()) {
	var mu sync.Mutex
	var opened []net.Conn
	if a.agentSock != "" {
		// A connection to the agent is opened per handshake; the agent
		// stays the owner of the keys.
		methods = append(methods, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			ac, err := net.Dial("unix", a.agentSock)
			if err != nil {
				return nil, fmt.Errorf("ssh agent at %s: %w", a.agentSock, err)
			}
			mu.Lock()
			opened = append(opened, ac)
			mu.Unlock()
			return agent.NewClient(ac).Signers()
		}))
	}
	if a.key != nil {
		methods = append(methods, ssh.PublicKeys(a.key))
	}
	return methods, func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range opened {
			c.Close()
		}
		opened = nil
	}
}

// hostKeyCallback verifies keys against known_hosts and returns the key
// algorithms known for the endpoint, so the server offers a key we can check.
func hostKeyCallback(file string, ep Endpoint) (ssh.HostKeyCallback, []string, error) {
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, nil, fmt.Errorf("ssh.known_hosts %s: %w (create it with ssh-keyscan, after checking the keys)", file, err)
	}
	host, port, _ := net.SplitHostPort(ep.Addr)
	scan := fmt.Sprintf("ssh-keyscan -p %s %s >> %s", port, host, file)
	verify := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) == 0 {
				return fmt.Errorf("%w: %s (%s) is not in %s: verify its %s key fingerprint %s out of band, then add it (%s)",
					ErrHostKey, ep.Name, ep.Addr, file, key.Type(), ssh.FingerprintSHA256(key), scan)
			}
			return fmt.Errorf("%w: HOST KEY CHANGED for %s (%s): it offered %s %s, %s line %d has a different key; if the host was rebuilt, remove that line and add the new key, otherwise stop: this may be an attack",
				ErrHostKey, ep.Name, ep.Addr, key.Type(), ssh.FingerprintSHA256(key), ke.Want[0].Filename, ke.Want[0].Line)
		}
		var re *knownhosts.RevokedError
		if errors.As(err, &re) {
			return fmt.Errorf("%w: %s (%s) offered a revoked key", ErrHostKey, ep.Name, ep.Addr)
		}
		return err
	}
	// Ask the callback with a throwaway key: the KeyError lists the keys
	// known for this host, whose types we then prefer in the handshake.
	var algos []string
	if err := cb(knownhosts.Normalize(ep.Addr), &net.TCPAddr{}, throwawayKey{}); err != nil {
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			for _, k := range ke.Want {
				algos = append(algos, algorithmsFor(k.Key.Type())...)
			}
		}
	}
	return verify, algos, nil
}

// algorithmsFor maps a key type to the host key algorithms that use it.
func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

type throwawayKey struct{}

func (throwawayKey) Type() string                        { return "gantry-probe" }
func (throwawayKey) Marshal() []byte                     { return []byte("gantry-probe") }
func (throwawayKey) Verify([]byte, *ssh.Signature) error { return errors.New("not a key") }

// openAttempts bounds how often a channel is opened again after the
// connection broke under it (each time on a redialled connection).
const openAttempts = 3

// openChannel opens a channel (a session, a forwarded connection) on the
// live connection, bounded by ctx even when the connection is frozen. When
// the open fails because the transport broke, rather than because the
// server refused it, nothing ran on the host: the connection is redialled
// and the open tried again.
func openChannel[T io.Closer](ctx context.Context, c *Conn, what string, open func(*ssh.Client) (T, error)) (*peer, T, error) {
	var zero T
	for attempt := 1; ; attempt++ {
		p, err := c.current(ctx)
		if err != nil {
			return nil, zero, err
		}
		v, err := boundedOpen(ctx, p, open)
		if err == nil {
			return p, v, nil
		}
		if ctx.Err() != nil {
			return nil, zero, fmt.Errorf("%s: %s: %w", c.Endpoint.Name, what, ctx.Err())
		}
		var refused *ssh.OpenChannelError
		if errors.As(err, &refused) || attempt == openAttempts || p.alive(ctx) {
			return nil, zero, fmt.Errorf("%s: %s: %w", c.Endpoint.Name, what, err)
		}
		// p is closed now (alive closes a peer that does not answer), so
		// the next round redials.
	}
}

// boundedOpen runs open but returns when ctx ends: x/crypto/ssh opens
// channels without a context, and on a frozen connection that would wait
// until the keepalive gave up. A channel that opens too late is closed.
func boundedOpen[T io.Closer](ctx context.Context, p *peer, open func(*ssh.Client) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := open(p.client)
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil {
				r.v.Close()
			}
		}()
		var zero T
		return zero, ctx.Err()
	}
}

// Run runs a shell command on the host, feeding it stdin (may be nil), and
// returns its stdout. The command is given to the remote shell as is:
// callers quote every argument with Quote. A non-zero exit is an error
// carrying the command's stderr. The whole call, opening the session
// included, ends when ctx does.
//
// Run starts the command at most once. If the connection broke before the
// session opened, nothing ran: it is redialled and the command started on
// the new connection. If it broke while the command ran, the command may
// or may not have taken effect, and Run returns the error (the next call
// redials); see RunIdempotent.
func (c *Conn) Run(ctx context.Context, command string, stdin []byte) ([]byte, error) {
	return c.run(ctx, command, stdin, false)
}

// RunIdempotent is Run for a command that is safe to run twice (a read, a
// write of a whole file): if the connection breaks while it runs, the
// connection is redialled and the command run again.
func (c *Conn) RunIdempotent(ctx context.Context, command string, stdin []byte) ([]byte, error) {
	return c.run(ctx, command, stdin, true)
}

func (c *Conn) run(ctx context.Context, command string, stdin []byte, idempotent bool) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		select {
		case c.sessions <- struct{}{}:
		default:
			// A command started ahead gives its session up to one that
			// needs it now.
			c.evictIdle()
			select {
			case c.sessions <- struct{}{}:
			case <-ctx.Done():
				return nil, fmt.Errorf("%s: waiting for one of %d ssh sessions: %w", c.Endpoint.Name, cap(c.sessions), ctx.Err())
			}
		}
		release := func() { <-c.sessions }
		p, sess, err := openChannel(ctx, c, "ssh session", func(cl *ssh.Client) (*ssh.Session, error) { return cl.NewSession() })
		if err != nil {
			release()
			return nil, err
		}
		out, err := c.runSession(ctx, sess, command, stdin, release)
		if err == nil || !idempotent || attempt == openAttempts || ctx.Err() != nil {
			return out, err
		}
		var exit *ssh.ExitError
		if errors.As(err, &exit) || p.alive(ctx) {
			// The command ran and failed: its answer stands.
			return out, err
		}
	}
}

// runSession runs command on sess and closes it; release is called once
// the session is closed.
func (c *Conn) runSession(ctx context.Context, sess *ssh.Session, command string, stdin []byte, release func()) ([]byte, error) {
	if stdin != nil {
		sess.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr strings.Builder
	sess.Stdout = &stdout
	sess.Stderr = &stderr
	done := make(chan error, 1)
	go func() { done <- sess.Run(command) }()
	var err error
	select {
	case err = <-done:
		sess.Close()
		release()
	case <-ctx.Done():
		// Signal and Close write to the connection, which may be the
		// frozen thing: do not wait for them.
		go func() {
			_ = sess.Signal(ssh.SIGTERM)
			sess.Close()
			release()
		}()
		return nil, fmt.Errorf("%s: remote command interrupted: %w", c.Endpoint.Name, ctx.Err())
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		// The *ssh.ExitError stays reachable with errors.As (ExitStatus()).
		return []byte(stdout.String()), fmt.Errorf("%w: %s", err, msg)
	}
	return []byte(stdout.String()), nil
}

// DialContext opens a connection from the host's side: "tcp" to host:port
// (direct-tcpip) or "unix" to a socket path (direct-streamlocal). If the
// SSH connection broke, it is redialled first.
func (c *Conn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	_, nc, err := openChannel(ctx, c, "ssh dial "+network+" "+addr, func(cl *ssh.Client) (net.Conn, error) {
		return cl.DialContext(ctx, network, addr)
	})
	return nc, err
}

// Close closes the connection (and the jump host connection, if any); a
// closed Conn is not redialled.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	target, jump := c.target, c.jump
	// Their sessions end with the connection.
	c.idle = nil
	c.mu.Unlock()
	if target != nil {
		target.kill(net.ErrClosed)
	}
	if jump != nil {
		jump.kill(net.ErrClosed)
	}
	return nil
}

// Quote returns s quoted for a POSIX shell, safe to put in a remote command.
func Quote(s string) string { return shell.Quote(s) }
