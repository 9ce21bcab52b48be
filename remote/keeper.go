package remote

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gantry-dev/gantry/internal/names"
)

// Connections kept across commands (SSHConfig.Persist).
//
// A keeper is a process of its own (KeeperCommand, e.g. `gantry
// ssh-keeper`), one per login (user, identity, known_hosts, jump host),
// listening on a unix socket in a directory only this user can use. A
// command reaches a host by opening an SSH connection to the keeper over
// that socket, naming the host as its user name; the keeper lends it a
// connection to the host it kept from an earlier command (after a sign of
// life), or dials one, and forwards every channel and request between the
// two. The command verifies the host's key against its own known_hosts
// before using the connection, so a key changed in known_hosts takes
// effect at once. A connection is lent to one command at a time (sshd's
// MaxSessions holds per command as without a keeper), and kept again
// only if everything the command opened on it has ended; otherwise it is
// closed, as a command's connection is when the command dies. The keeper
// exits once no command has used it for Persist.
//
// When no keeper can be reached or started, the command dials the host
// itself: a keeper makes commands faster, never possible.

// errNoKeeper is returned (wrapped) when no keeper could be reached or
// started; the caller dials directly.
var errNoKeeper = errors.New("no ssh connection keeper")

const (
	// keeperHostKeyRequest asks the keeper for the host key of the
	// connection it lends (dialling it first when needed). The answer is
	// the key in wire format, or a keeperRefusal.
	keeperHostKeyRequest = "host-key@gantry"
	// keeperLendCheck bounds the sign of life a kept connection must give
	// before it is lent again.
	keeperLendCheck = time.Second
	// keeperGrace is how long what a command opened on a connection may
	// take to end after the command went away, for the connection to be
	// kept rather than closed.
	keeperGrace = 2 * time.Second
	// keeperStartTimeout bounds starting a keeper.
	keeperStartTimeout = 5 * time.Second
)

// DefaultPersistDir is where keepers' sockets go when SSHConfig.PersistDir
// is empty: $XDG_RUNTIME_DIR/gantry-ssh, else the user's cache directory.
func DefaultPersistDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "gantry-ssh")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "gantry", "ssh")
	}
	return filepath.Join(os.TempDir(), "gantry-ssh-"+strconv.Itoa(os.Getuid()))
}

// keeperFiles are one keeper's files: its socket, pid file, the lock
// taken to start it, and its log.
type keeperFiles struct {
	dir, socket, pid, lock, log string
}

// keeperFilesFor names the keeper of cfg's login: connections made with
// another user, identity, agent, known_hosts or jump host are another
// keeper's. So are those of another gantry binary (another path, or the
// same path upgraded): a keeper runs the code of the binary that started
// it, and one left by an earlier version is not used (it exits once
// idle).
func keeperFilesFor(cfg SSHConfig) keeperFiles {
	cfg = cfg.withDefaults()
	dir := cfg.PersistDir
	if dir == "" {
		dir = DefaultPersistDir()
	}
	login := struct {
		UID                                    int
		User, IdentityFile, KnownHosts, Jump   string
		Agent                                  bool
		AgentSocket                            string
		JumpPort                               int
		ConnectTimeout, KeepaliveInterval      time.Duration
		KeepaliveCountMax, RedialAttempts, Max int
		Keeper                                 []string
		KeeperSize                             int64
		KeeperModified                         time.Time
	}{UID: os.Getuid(), User: cfg.User, IdentityFile: cfg.IdentityFile, KnownHosts: cfg.KnownHostsFile, Jump: cfg.JumpHost,
		Agent: cfg.UseAgent, JumpPort: cfg.JumpPort, ConnectTimeout: cfg.ConnectTimeout, KeepaliveInterval: cfg.KeepaliveInterval,
		KeepaliveCountMax: cfg.KeepaliveCountMax, RedialAttempts: cfg.RedialAttempts, Max: cfg.MaxSessions, Keeper: cfg.KeeperCommand}
	if cfg.UseAgent {
		login.AgentSocket = os.Getenv("SSH_AUTH_SOCK")
	}
	if len(cfg.KeeperCommand) > 0 {
		if fi, err := os.Stat(cfg.KeeperCommand[0]); err == nil {
			login.KeeperSize, login.KeeperModified = fi.Size(), fi.ModTime().UTC()
		}
	}
	b, _ := json.Marshal(login)
	sum := sha256.Sum256(b)
	base := filepath.Join(dir, hex.EncodeToString(sum[:8]))
	return keeperFiles{dir: dir, socket: base + ".sock", pid: base + ".pid", lock: base + ".lock", log: base + ".log"}
}

// keeperTarget is the host a command asks the keeper for, sent as the
// SSH user name of its connection to the keeper.
type keeperTarget struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

// keeperRefusal is the keeper's answer when it could not reach the host.
type keeperRefusal struct {
	Error   string `json:"error"`
	HostKey bool   `json:"host_key,omitempty"`
}

// dialKept returns a connection to ep through the keeper of cfg's login,
// starting the keeper when none runs, and the host key it verified. Errors
// wrap errNoKeeper when the keeper could not be had (dial directly then);
// other errors are the host's (unreachable, host key).
func dialKept(ctx context.Context, cfg SSHConfig, ep Endpoint) (*ssh.Client, ssh.PublicKey, error) {
	files := keeperFilesFor(cfg)
	nc, err := reachKeeper(ctx, cfg, files)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errNoKeeper, err)
	}
	// The keeper dials the host (through the jump host, when there is
	// one), each bounded by ConnectTimeout.
	bound := 2*cfg.ConnectTimeout + time.Second
	dctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	stop := context.AfterFunc(dctx, func() { nc.Close() })
	defer stop()
	who, _ := json.Marshal(keeperTarget{Name: ep.Name, Addr: ep.Addr})
	c, chans, reqs, err := ssh.NewClientConn(nc, "keeper", &ssh.ClientConfig{
		User: string(who),
		// The keeper is reached through a socket in a directory only this
		// user can use and has a new key each time it starts: there is no
		// key of its to pin. The host's own key is verified below.
		HostKeyCallback: func(string, net.Addr, ssh.PublicKey) error { return nil },
	})
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("%w: %s: %w", errNoKeeper, files.socket, err)
	}
	client := ssh.NewClient(c, chans, reqs)
	ok, answer, err := client.SendRequest(keeperHostKeyRequest, true, nil)
	if err != nil {
		client.Close()
		if ctx.Err() == nil && dctx.Err() != nil {
			return nil, nil, fmt.Errorf("%s: ssh connect to %s through the connection keeper timed out after %s", ep.Name, ep.Addr, bound)
		}
		return nil, nil, fmt.Errorf("%w: %s: %w", errNoKeeper, files.socket, err)
	}
	if !ok {
		client.Close()
		var r keeperRefusal
		if json.Unmarshal(answer, &r) != nil || r.Error == "" {
			return nil, nil, fmt.Errorf("%w: %s: the keeper's answer about %s is not understood", errNoKeeper, files.socket, ep.Addr)
		}
		if r.HostKey {
			return nil, nil, fmt.Errorf("%w%s", ErrHostKey, strings.TrimPrefix(r.Error, ErrHostKey.Error()))
		}
		return nil, nil, errors.New(r.Error)
	}
	key, err := ssh.ParsePublicKey(answer)
	if err == nil {
		var verify ssh.HostKeyCallback
		if verify, _, err = hostKeyCallback(cfg.KnownHostsFile, ep); err == nil {
			err = verify(ep.Addr, &net.TCPAddr{}, key)
		}
	}
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return client, key, nil
}

// reachKeeper connects to the keeper's socket, starting the keeper first
// when none answers there.
func reachKeeper(ctx context.Context, cfg SSHConfig, f keeperFiles) (net.Conn, error) {
	if len(f.socket) > names.MaxSocketPath {
		return nil, fmt.Errorf("ssh.persist_dir %s is too long for the keeper's socket %s (a unix socket's path has at most %d bytes): set ssh.persist_dir to a shorter directory", f.dir, f.socket, names.MaxSocketPath)
	}
	if err := privateDir(f.dir); err != nil {
		return nil, err
	}
	var d net.Dialer
	if nc, err := d.DialContext(ctx, "unix", f.socket); err == nil {
		return nc, nil
	}
	unlock, err := lockFile(ctx, f.lock)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Another command may have started it meanwhile.
	if nc, err := d.DialContext(ctx, "unix", f.socket); err == nil {
		return nc, nil
	}
	if err := startKeeper(ctx, cfg, f); err != nil {
		return nil, err
	}
	return d.DialContext(ctx, "unix", f.socket)
}

// privateDir makes dir (mode 0700) and checks that it is this user's and
// nobody else can use it: its sockets lead to logged-in connections.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ssh.persist_dir %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("ssh.persist_dir %s: %w", dir, err)
	}
	switch {
	case !fi.IsDir() || !ownedByMe(fi):
		return fmt.Errorf("ssh.persist_dir %s is not a directory of yours: set ssh.persist_dir to one that is, that only you can use", dir)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("ssh.persist_dir %s can be used by others (mode %o): chmod 700 %s", dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// lockFile takes an exclusive lock on path, waiting at most
// keeperStartTimeout; unlock releases it.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(keeperStartTimeout)
	for {
		err := tryLock(f)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%s: still locked after %s: %w", path, keeperStartTimeout, err)
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// keeperSpec is what a keeper starts with, on its standard input.
type keeperSpec struct {
	SSH    SSHConfig
	Socket string
	Pid    string
}

// startKeeper starts cfg's keeper (cfg.KeeperCommand) in a session of its
// own and waits until it listens on f.socket.
func startKeeper(ctx context.Context, cfg SSHConfig, f keeperFiles) error {
	// A keeper that died left its socket behind.
	if err := os.Remove(f.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	spec, err := json.Marshal(keeperSpec{SSH: cfg, Socket: f.socket, Pid: f.pid})
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(f.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(cfg.KeeperCommand[0], cfg.KeeperCommand[1:]...)
	cmd.Dir = "/"
	cmd.Stderr = logFile
	detach(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", strings.Join(cfg.KeeperCommand, " "), err)
	}
	// Reaped when it exits (the keeper usually outlives this command).
	go func() { _ = cmd.Wait() }()
	_, _ = stdin.Write(spec)
	stdin.Close()
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if strings.TrimSpace(line) != "ready" {
			ready <- fmt.Errorf("the keeper did not start (%v; see %s)", err, f.log)
			return
		}
		ready <- nil
	}()
	t := time.NewTimer(keeperStartTimeout)
	defer t.Stop()
	select {
	case err = <-ready:
	case <-t.C:
		err = fmt.Errorf("the keeper did not answer within %s (see %s)", keeperStartTimeout, f.log)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		_ = cmd.Process.Kill()
	}
	return err
}

// RunKeeper is a keeper process (`gantry ssh-keeper`): it reads its spec
// (JSON) from in, listens on the spec's socket, writes "ready" to ready,
// and serves commands until none has come for SSHConfig.Persist or ctx
// ends; then it closes every connection it kept and removes its socket
// and pid file.
func RunKeeper(ctx context.Context, in io.Reader, ready io.Writer) error {
	var spec keeperSpec
	if err := json.NewDecoder(in).Decode(&spec); err != nil {
		return fmt.Errorf("ssh keeper: reading its spec: %w", err)
	}
	if spec.SSH.Persist <= 0 || spec.Socket == "" {
		return errors.New("ssh keeper: the spec has no socket or persist time")
	}
	k := &keeper{cfg: spec.SSH.withDefaults(), persist: spec.SSH.Persist, pool: map[keeperTarget][]*Conn{}, lent: map[*Conn]bool{}}
	// The keeper dials the hosts itself.
	k.cfg.Persist, k.cfg.KeeperCommand = 0, nil
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if k.signer, err = ssh.NewSignerFromKey(priv); err != nil {
		return err
	}
	ln, err := net.Listen("unix", spec.Socket)
	if err != nil {
		return fmt.Errorf("ssh keeper: %w", err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		// Removed below only while it is still this keeper's: by then a
		// newer keeper may listen at the same path.
		ul.SetUnlinkOnClose(false)
	}
	bound, err := os.Stat(spec.Socket)
	if err == nil {
		err = os.Chmod(spec.Socket, 0o600)
	}
	if err != nil {
		ln.Close()
		return err
	}
	pid := strconv.Itoa(os.Getpid())
	if err := os.WriteFile(spec.Pid, []byte(pid+"\n"), 0o600); err != nil {
		ln.Close()
		return err
	}
	defer func() {
		// The socket first: a command that finds none starts a keeper
		// anew. Files a newer keeper took over are left to it.
		if fi, err := os.Stat(spec.Socket); err == nil && os.SameFile(fi, bound) {
			os.Remove(spec.Socket)
		}
		ln.Close()
		if b, err := os.ReadFile(spec.Pid); err == nil && strings.TrimSpace(string(b)) == pid {
			os.Remove(spec.Pid)
		}
		k.closeAll()
	}()
	fmt.Fprintln(ready, "ready")
	if c, ok := ready.(io.Closer); ok {
		c.Close()
	}
	return k.serve(ctx, ln)
}

// keeper holds the connections kept between commands.
type keeper struct {
	cfg     SSHConfig
	persist time.Duration
	signer  ssh.Signer

	mu   sync.Mutex
	pool map[keeperTarget][]*Conn // kept, not lent
	lent map[*Conn]bool
}

// serve accepts commands until none came for k.persist (or ctx ends).
func (k *keeper) serve(ctx context.Context, ln net.Listener) error {
	accepted := make(chan net.Conn)
	failed := make(chan error, 1)
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				failed <- err
				return
			}
			select {
			case accepted <- nc:
			case <-stopped:
				nc.Close()
				return
			}
		}
	}()
	left := make(chan struct{})
	active := 0
	idle := time.NewTimer(k.persist)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-failed:
			return fmt.Errorf("ssh keeper: %w", err)
		case <-idle.C:
			if active == 0 {
				return nil
			}
		case nc := <-accepted:
			active++
			idle.Stop()
			go func() {
				defer func() { left <- struct{}{} }()
				k.command(ctx, nc)
			}()
		case <-left:
			active--
			if active == 0 {
				idle.Reset(k.persist)
			}
		}
	}
}

// command serves one command's connection to one host.
func (k *keeper) command(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	if !peerIsMe(nc) {
		return
	}
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(k.signer)
	// A command that stops before its handshake ends (suspended, say)
	// must not hold the keeper: it redials as it would after any error.
	_ = nc.SetDeadline(time.Now().Add(keeperStartTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	_ = nc.SetDeadline(time.Time{})
	defer sc.Close()
	var target keeperTarget
	if json.Unmarshal([]byte(sc.User()), &target) != nil || target.Addr == "" {
		return
	}
	l := &loan{k: k, target: target, command: sc}
	var open sync.WaitGroup // channels forwarded and not yet closed by the host
	requestsDone := make(chan struct{})
	go func() {
		defer close(requestsDone)
		for r := range reqs {
			l.request(ctx, r)
		}
	}()
	for ch := range chans {
		p, err := l.peer(ctx)
		if err != nil {
			_ = ch.Reject(ssh.ConnectionFailed, err.Error())
			continue
		}
		open.Add(1)
		go func() {
			defer open.Done()
			if err := forwardChannel(ch, p.client); err != nil {
				// The host's connection broke under the open: the
				// command's connection ends too, so that the command
				// redials rather than take it for a refusal.
				p.kill(err)
				sc.Close()
			}
		}()
	}
	<-requestsDone
	l.end(&open)
}

// loan is one command's use of a connection to one host.
type loan struct {
	k       *keeper
	target  keeperTarget
	command *ssh.ServerConn

	once sync.Once
	conn *Conn
	p    *peer
	err  error
	done chan struct{} // closed when the loan ends
}

// peer returns the connection lent, taking it on first use.
func (l *loan) peer(ctx context.Context) (*peer, error) {
	l.once.Do(func() {
		l.done = make(chan struct{})
		l.conn, l.p, l.err = l.k.lend(ctx, l.target)
		if l.err != nil {
			return
		}
		// A connection that ends under a command ends the command's:
		// it redials, and verifies the host key again.
		go func() {
			select {
			case <-l.p.done:
				l.command.Close()
			case <-l.done:
			}
		}()
	})
	return l.p, l.err
}

// request answers one of the command's global requests.
func (l *loan) request(ctx context.Context, r *ssh.Request) {
	switch r.Type {
	case keeperHostKeyRequest:
		p, err := l.peer(ctx)
		if err != nil {
			refusal, _ := json.Marshal(keeperRefusal{Error: err.Error(), HostKey: errors.Is(err, ErrHostKey)})
			_ = r.Reply(false, refusal)
			return
		}
		_ = r.Reply(true, p.hostKey.Marshal())
	case "keepalive@openssh.com":
		// Asked of the host itself, so that a frozen host is noticed by
		// the command as without a keeper.
		p, err := l.peer(ctx)
		if err != nil {
			_ = r.Reply(false, nil)
			return
		}
		if _, _, err := p.client.SendRequest(r.Type, true, nil); err != nil {
			l.command.Close()
			return
		}
		_ = r.Reply(false, nil) // as sshd answers it
	default:
		if r.WantReply {
			_ = r.Reply(false, nil)
		}
	}
}

// end ends the loan once the command went away: the connection is kept
// if it answers and everything the command opened on it ended within
// keeperGrace; else it is closed.
func (l *loan) end(open *sync.WaitGroup) {
	if l.done == nil {
		return // never lent
	}
	close(l.done)
	if l.err != nil {
		return
	}
	ended := make(chan struct{})
	go func() {
		open.Wait()
		close(ended)
	}()
	t := time.NewTimer(keeperGrace)
	defer t.Stop()
	select {
	case <-ended:
		l.k.giveBack(l.target, l.conn, l.p)
	case <-t.C:
		l.k.discard(l.conn)
	}
}

// lend takes a kept connection to target that still answers, or dials one.
func (k *keeper) lend(ctx context.Context, target keeperTarget) (*Conn, *peer, error) {
	for {
		k.mu.Lock()
		kept := k.pool[target]
		if len(kept) == 0 {
			k.mu.Unlock()
			break
		}
		c := kept[len(kept)-1]
		k.pool[target] = kept[:len(kept)-1]
		k.lent[c] = true
		k.mu.Unlock()
		if p := c.live(); p != nil && p.answers(keeperLendCheck) && k.trusted(target, p.hostKey) {
			return c, p, nil
		}
		k.discard(c)
	}
	ep := Endpoint{Name: target.Name, Addr: target.Addr}
	c, err := Dial(ctx, k.cfg, ep)
	if err != nil {
		return nil, nil, err
	}
	p := c.live()
	if p == nil {
		c.Close()
		return nil, nil, fmt.Errorf("%s: ssh connection to %s closed at once", ep.Name, ep.Addr)
	}
	k.mu.Lock()
	k.lent[c] = true
	k.mu.Unlock()
	return c, p, nil
}

// trusted says whether known_hosts still has key for target. A kept
// connection whose key is no longer there (the host's key was rotated,
// or its type changed in known_hosts) is not lent: the command would
// refuse it and the keeper keep it, so every command would. It is closed
// and the host dialled again, its key checked as on any dial.
func (k *keeper) trusted(target keeperTarget, key ssh.PublicKey) bool {
	if key == nil {
		return false
	}
	verify, _, err := hostKeyCallback(k.cfg.KnownHostsFile, Endpoint{Name: target.Name, Addr: target.Addr})
	return err == nil && verify(target.Addr, &net.TCPAddr{}, key) == nil
}

// giveBack keeps c for the next command, if it is still the live
// connection.
func (k *keeper) giveBack(target keeperTarget, c *Conn, p *peer) {
	if c.live() != p {
		k.discard(c)
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.lent, c)
	k.pool[target] = append(k.pool[target], c)
}

// discard closes c.
func (k *keeper) discard(c *Conn) {
	k.mu.Lock()
	delete(k.lent, c)
	k.mu.Unlock()
	c.Close()
}

// closeAll closes every connection, kept or lent.
func (k *keeper) closeAll() {
	k.mu.Lock()
	var all []*Conn
	for _, kept := range k.pool {
		all = append(all, kept...)
	}
	for c := range k.lent {
		all = append(all, c)
	}
	k.pool, k.lent = map[keeperTarget][]*Conn{}, map[*Conn]bool{}
	k.mu.Unlock()
	for _, c := range all {
		c.Close()
	}
}

// forwardChannel opens a channel like down on up and forwards between
// them: data both ways, requests both ways (exec, signals; exit status),
// end of data, and the close once the host's side closed and all it sent
// was passed on, or the command's side closed. A refusal by the host is
// passed on; an error is returned when up's transport failed instead.
func forwardChannel(down ssh.NewChannel, up *ssh.Client) error {
	uch, ureqs, err := up.OpenChannel(down.ChannelType(), down.ExtraData())
	if err != nil {
		var refused *ssh.OpenChannelError
		if errors.As(err, &refused) {
			_ = down.Reject(refused.Reason, refused.Message)
			return nil
		}
		// Not refused: the caller ends the command's connection.
		return fmt.Errorf("opening a channel failed: %w", err)
	}
	dch, dreqs, err := down.Accept()
	if err != nil {
		uch.Close()
		return nil
	}
	// What the host sends goes down, standard output and error, then the
	// end of data (which ends both).
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		var copied sync.WaitGroup
		copied.Add(1)
		go func() {
			defer copied.Done()
			_, _ = io.Copy(dch.Stderr(), uch.Stderr())
		}()
		_, _ = io.Copy(dch, uch)
		copied.Wait()
		_ = dch.CloseWrite()
	}()
	// What the command sends goes up (gantry sends no standard error).
	go func() {
		_, _ = io.Copy(uch, dch)
		_ = uch.CloseWrite()
	}()
	// A request is answered before the channel closes: a host quick to
	// answer and exit must not close the command's side under the reply.
	var replying sync.Mutex
	go func() {
		for r := range dreqs {
			replying.Lock()
			ok, _ := uch.SendRequest(r.Type, r.WantReply, r.Payload)
			if r.WantReply {
				_ = r.Reply(ok, nil)
			}
			replying.Unlock()
		}
		// The command closed its side (or went away).
		uch.Close()
	}()
	for r := range ureqs {
		ok, _ := dch.SendRequest(r.Type, r.WantReply, r.Payload)
		if r.WantReply {
			_ = r.Reply(ok, nil)
		}
	}
	<-sent
	replying.Lock()
	dch.Close()
	replying.Unlock()
	return nil
}

// live returns the connection in use if it has not ended, else nil; it
// never redials.
func (c *Conn) live() *peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.target == nil || c.target.dead() {
		return nil
	}
	return c.target
}

// answers asks the peer for a sign of life, waiting at most wait.
func (p *peer) answers(wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-p.ping():
		return err == nil
	case <-t.C:
		return false
	}
}
