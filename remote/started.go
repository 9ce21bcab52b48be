package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Pending is a command started ahead by Conn.Start, blocked reading its
// stdin. It is an alias of an interface literal so that packages that
// use it (lb) declare the same type without importing this one.
type Pending = interface {
	// Finish gives the command its stdin, closes it, and returns the
	// command's stdout once it exited, like Run.
	Finish(ctx context.Context, stdin []byte) ([]byte, error)
	// Abandon closes the command's stdin unwritten and ends its session.
	Abandon()
}

// ErrNoFreeSession is returned (wrapped) by Start when every session of
// the connection is in use: a command started ahead never waits for one.
var ErrNoFreeSession = errors.New("no free ssh session")

// Start starts command on the host ahead of its input: the session is
// opened and the command runs, reading its stdin, until Finish gives it
// or Abandon closes it. ctx bounds the start only. Nothing is retried: a
// command started ahead whose connection broke fails at Finish, and the
// caller runs it again the usual way if it may.
//
// A started command holds one of the connection's MaxSessions while it
// waits: Start takes none when they are all in use (ErrNoFreeSession),
// and a Run that finds none free abandons the longest-waiting started
// command, so that commands started ahead never keep others waiting.
func (c *Conn) Start(ctx context.Context, command string) (Pending, error) {
	select {
	case c.sessions <- struct{}{}:
	default:
		return nil, fmt.Errorf("%s: starting a command ahead: %w (%d in use)", c.Endpoint.Name, ErrNoFreeSession, cap(c.sessions))
	}
	s := &started{c: c, done: make(chan struct{})}
	_, sess, err := openChannel(ctx, c, "ssh session", func(cl *ssh.Client) (*ssh.Session, error) { return cl.NewSession() })
	if err != nil {
		<-c.sessions
		return nil, err
	}
	s.sess = sess
	if s.stdin, err = sess.StdinPipe(); err != nil {
		sess.Close()
		<-c.sessions
		return nil, fmt.Errorf("%s: ssh session: %w", c.Endpoint.Name, err)
	}
	sess.Stdout, sess.Stderr = &s.stdout, &s.stderr
	// The exec request waits for the server's answer: bounded by ctx like
	// the open, since the connection may be the frozen thing.
	started := make(chan error, 1)
	go func() { started <- sess.Start(command) }()
	select {
	case err = <-started:
	case <-ctx.Done():
		go func() {
			<-started
			sess.Close()
			<-c.sessions
		}()
		return nil, fmt.Errorf("%s: starting a remote command: %w", c.Endpoint.Name, ctx.Err())
	}
	if err != nil {
		sess.Close()
		<-c.sessions
		return nil, fmt.Errorf("%s: starting a remote command: %w", c.Endpoint.Name, err)
	}
	go func() {
		s.err = sess.Wait()
		sess.Close()
		<-c.sessions
		close(s.done)
	}()
	c.mu.Lock()
	c.idle = append(c.idle, s)
	c.mu.Unlock()
	return s, nil
}

// started is a command started ahead (Start).
type started struct {
	c      *Conn
	sess   *ssh.Session
	stdin  io.WriteCloser
	stdout strings.Builder
	stderr strings.Builder
	// done is closed once the session ended; err is then its end.
	done chan struct{}
	err  error
	// claimed is set once Finish or Abandon (or an eviction) took it;
	// guarded by c.mu.
	claimed bool
}

// claim takes s off the connection's idle commands; false when Finish or
// Abandon took it already.
func (s *started) claim() bool {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.claimed {
		return false
	}
	s.claimed = true
	s.c.idle = slices.DeleteFunc(s.c.idle, func(o *started) bool { return o == s })
	return true
}

// Finish writes stdin to the command, closes it and waits for the command
// to exit (or ctx to end), returning its stdout; a non-zero exit is an
// error carrying the command's stderr, as Run's.
func (s *started) Finish(ctx context.Context, stdin []byte) ([]byte, error) {
	name := s.c.Endpoint.Name
	if !s.claim() {
		return nil, fmt.Errorf("%s: a command started ahead was finished or abandoned already", name)
	}
	go func() {
		// A write to a broken connection fails; the session's end says
		// why.
		_, _ = s.stdin.Write(stdin)
		s.stdin.Close()
	}()
	select {
	case <-s.done:
	case <-ctx.Done():
		// Signal and Close write to the connection, which may be the
		// frozen thing: do not wait for them.
		go func() {
			_ = s.sess.Signal(ssh.SIGTERM)
			s.sess.Close()
		}()
		return nil, fmt.Errorf("%s: remote command interrupted: %w", name, ctx.Err())
	}
	if s.err != nil {
		msg := strings.TrimSpace(s.stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(s.stdout.String())
		}
		return []byte(s.stdout.String()), fmt.Errorf("%w: %s", s.err, msg)
	}
	return []byte(s.stdout.String()), nil
}

// Abandon closes the command's stdin without writing to it and ends the
// session; its session slot is free once the server closed it.
func (s *started) Abandon() {
	if s.claim() {
		s.abandon()
	}
}

func (s *started) abandon() {
	go func() {
		s.stdin.Close()
		s.sess.Close()
	}()
}

// evictIdle abandons the command started ahead that has waited longest,
// if any, to free its session for a command that needs one now.
func (c *Conn) evictIdle() {
	c.mu.Lock()
	if len(c.idle) == 0 {
		c.mu.Unlock()
		return
	}
	s := c.idle[0]
	c.idle = c.idle[1:]
	s.claimed = true
	c.mu.Unlock()
	s.abandon()
}
