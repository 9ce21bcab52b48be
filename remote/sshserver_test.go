package remote

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshServer is a real SSH server on 127.0.0.1 for unit tests of the
// connection logic: it runs a few fake commands, forwards direct-tcpip
// and direct-streamlocal channels, answers keepalives, and its
// connections can be frozen (it stops reading and writing them) or cut.
type sshServer struct {
	t      *testing.T
	ln     net.Listener
	Addr   string
	hostMu sync.Mutex
	host   ssh.Signer

	mu    sync.Mutex
	conns []*freezableConn

	accepts atomic.Int32 // TCP connections accepted
	runs    atomic.Int32 // commands started
	// cutOnce makes the command "cut-once" close the connection the
	// first time it runs, after it counted itself.
	cutOnce atomic.Bool
	// maxSessions, when set, refuses sessions past it on a connection, as
	// sshd's MaxSessions does; sessions and mostSessions count the open
	// ones and the most seen at once.
	maxSessions  int32
	sessions     atomic.Int32
	mostSessions atomic.Int32
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startSSHServer(t *testing.T) *sshServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sshServer{t: t, ln: ln, Addr: ln.Addr().String(), host: newSigner(t)}
	t.Cleanup(s.stop)
	go s.serve()
	return s
}

// stop closes the listener and every connection (thawing frozen ones).
func (s *sshServer) stop() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.thawAndClose()
	}
}

func (s *sshServer) serve() {
	for {
		raw, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepts.Add(1)
		fc := &freezableConn{Conn: raw, thaw: make(chan struct{})}
		s.mu.Lock()
		s.conns = append(s.conns, fc)
		s.mu.Unlock()
		go s.handle(fc)
	}
}

func (s *sshServer) setHostKey(k ssh.Signer) {
	s.hostMu.Lock()
	s.host = k
	s.hostMu.Unlock()
}

func (s *sshServer) handle(fc *freezableConn) {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil },
	}
	s.hostMu.Lock()
	cfg.AddHostKey(s.host)
	s.hostMu.Unlock()
	sc, chans, reqs, err := ssh.NewServerConn(fc, cfg)
	if err != nil {
		fc.Close()
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs) // keepalives: answered with "failure", as OpenSSH does
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			n := s.sessions.Add(1)
			if s.maxSessions > 0 && n > s.maxSessions {
				s.sessions.Add(-1)
				nc.Reject(ssh.Prohibited, "open failed") // what sshd answers past MaxSessions
				continue
			}
			for m := s.mostSessions.Load(); n > m && !s.mostSessions.CompareAndSwap(m, n); m = s.mostSessions.Load() {
			}
			go func() {
				defer s.sessions.Add(-1)
				s.session(fc, nc)
			}()
		case "direct-tcpip":
			var m struct {
				Host     string
				Port     uint32
				OrigHost string
				OrigPort uint32
			}
			if err := ssh.Unmarshal(nc.ExtraData(), &m); err != nil {
				nc.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			go forward(nc, "tcp", net.JoinHostPort(m.Host, fmt.Sprint(m.Port)))
		case "direct-streamlocal@openssh.com":
			var m struct {
				Path      string
				Reserved0 string
				Reserved1 uint32
			}
			if err := ssh.Unmarshal(nc.ExtraData(), &m); err != nil {
				nc.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			go forward(nc, "unix", m.Path)
		default:
			nc.Reject(ssh.Prohibited, "not here")
		}
	}
}

func forward(nc ssh.NewChannel, network, addr string) {
	out, err := net.Dial(network, addr)
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		out.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	go func() { io.Copy(out, ch); out.Close() }()
	io.Copy(ch, out)
	ch.Close()
}

// session runs one "exec": "echo X" prints X; "fail" exits 3; "hang" never
// ends; "cut-once" counts itself and (the first time, if cutOnce is set)
// cuts the connection before answering.
func (s *sshServer) session(fc *freezableConn, nc ssh.NewChannel) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	for r := range reqs {
		if r.Type != "exec" {
			r.Reply(false, nil)
			continue
		}
		var m struct{ Command string }
		ssh.Unmarshal(r.Payload, &m)
		r.Reply(true, nil)
		s.runs.Add(1)
		status := uint32(0)
		switch cmd := m.Command; {
		case strings.HasPrefix(cmd, "echo "):
			fmt.Fprintln(ch, strings.TrimPrefix(cmd, "echo "))
		case cmd == "read-all":
			// Echoes its stdin once it ended; "no input" when it was empty.
			b, _ := io.ReadAll(ch)
			if len(b) == 0 {
				fmt.Fprintln(ch.Stderr(), "no input")
				status = 45
			}
			ch.Write(b)
		case cmd == "nap":
			time.Sleep(30 * time.Millisecond)
		case cmd == "fail":
			fmt.Fprintln(ch.Stderr(), "boom")
			status = 3
		case cmd == "hang":
			for range reqs {
			}
			return
		case cmd == "cut-once":
			if s.cutOnce.CompareAndSwap(true, false) {
				fc.Close()
				return
			}
			fmt.Fprintln(ch, "done")
		default:
			fmt.Fprintln(ch.Stderr(), "unknown command")
			status = 127
		}
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}

// freeze makes every open connection stop reading and writing: the
// client sees a peer that says nothing, as when the sshd serving it is
// stopped. New connections are not frozen.
func (s *sshServer) freeze() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.freeze()
	}
}

// cut closes every open connection (the listener stays).
func (s *sshServer) cut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.thawAndClose()
	}
}

type freezableConn struct {
	net.Conn
	mu     sync.Mutex
	frozen bool
	thaw   chan struct{}
	once   sync.Once
}

func (f *freezableConn) freeze() {
	f.mu.Lock()
	f.frozen = true
	f.mu.Unlock()
}

func (f *freezableConn) thawAndClose() {
	f.once.Do(func() { close(f.thaw) })
	f.Conn.Close()
}

func (f *freezableConn) gate() {
	f.mu.Lock()
	frozen := f.frozen
	f.mu.Unlock()
	if frozen {
		<-f.thaw
	}
}

func (f *freezableConn) Read(b []byte) (int, error) {
	f.gate()
	return f.Conn.Read(b)
}

func (f *freezableConn) Write(b []byte) (int, error) {
	f.gate()
	return f.Conn.Write(b)
}

// clientFiles writes a client key and a known_hosts file trusting the
// servers' host keys, and returns an SSHConfig using them with fast
// keepalives and redials.
func clientFiles(t *testing.T, servers ...*sshServer) SSHConfig {
	t.Helper()
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	id := filepath.Join(dir, "id")
	if err := os.WriteFile(id, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	var kh strings.Builder
	for _, s := range servers {
		kh.WriteString(knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.host.PublicKey()) + "\n")
	}
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, []byte(kh.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return SSHConfig{
		User:              "deploy",
		IdentityFile:      id,
		KnownHostsFile:    known,
		ConnectTimeout:    5 * time.Second,
		KeepaliveInterval: 50 * time.Millisecond,
		KeepaliveCountMax: 3,
		RedialAttempts:    3,
		RedialBackoff:     10 * time.Millisecond,
	}
}
