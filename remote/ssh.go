package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/gantry-dev/gantry/internal/shell"
)

// ErrHostKey is returned (wrapped) when a host's key is unknown or differs
// from the one in known_hosts.
var ErrHostKey = errors.New("host key verification failed")

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
}

// Endpoint is one machine to reach: a name for messages and host:port.
type Endpoint struct {
	Name string
	Addr string // host:port of its sshd
}

// Conn is one SSH connection to one host, reused for everything on it.
type Conn struct {
	Endpoint Endpoint
	client   *ssh.Client
	jump     *ssh.Client
}

// Dial opens an SSH connection to ep, verifying its host key against the
// known_hosts file.
func Dial(ctx context.Context, cfg SSHConfig, ep Endpoint) (*Conn, error) {
	auth, err := authMethods(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.JumpHost != "" {
		return dialViaJump(ctx, cfg, auth, ep)
	}
	client, err := dialSSH(ctx, cfg, auth, cfg.User, ep, nil)
	if err != nil {
		return nil, err
	}
	return &Conn{Endpoint: ep, client: client}, nil
}

func dialViaJump(ctx context.Context, cfg SSHConfig, auth []ssh.AuthMethod, ep Endpoint) (*Conn, error) {
	user, hostport := cfg.User, cfg.JumpHost
	if u, h, ok := strings.Cut(hostport, "@"); ok {
		user, hostport = u, h
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(hostport, fmt.Sprint(cfg.JumpPort))
	}
	jump, err := dialSSH(ctx, cfg, auth, user, Endpoint{Name: "jump host " + hostport, Addr: hostport}, nil)
	if err != nil {
		return nil, err
	}
	client, err := dialSSH(ctx, cfg, auth, cfg.User, ep, jump)
	if err != nil {
		jump.Close()
		return nil, err
	}
	return &Conn{Endpoint: ep, client: client, jump: jump}, nil
}

func dialSSH(ctx context.Context, cfg SSHConfig, auth []ssh.AuthMethod, user string, ep Endpoint, via *ssh.Client) (*ssh.Client, error) {
	hostKeys, algos, err := hostKeyCallback(cfg.KnownHostsFile, ep)
	if err != nil {
		return nil, err
	}
	sc := &ssh.ClientConfig{
		User:              user,
		Auth:              auth,
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
		return nil, fmt.Errorf("%s: ssh connect to %s: %w", ep.Name, ep.Addr, err)
	}
	// The handshake has no context of its own: bound it by closing the
	// connection when the context ends first.
	stop := context.AfterFunc(dctx, func() { nc.Close() })
	c, chans, reqs, err := ssh.NewClientConn(nc, ep.Addr, sc)
	stop()
	if err != nil {
		nc.Close()
		if errors.Is(err, ErrHostKey) {
			return nil, err
		}
		if dctx.Err() != nil {
			return nil, fmt.Errorf("%s: ssh handshake with %s timed out after %s", ep.Name, ep.Addr, cfg.ConnectTimeout)
		}
		return nil, fmt.Errorf("%s: ssh login to %s as %s: %w", ep.Name, ep.Addr, user, err)
	}
	return ssh.NewClient(c, chans, reqs), nil
}

func authMethods(cfg SSHConfig) ([]ssh.AuthMethod, error) {
	var methods []ssh.AuthMethod
	if cfg.UseAgent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, errors.New("ssh.agent is true but SSH_AUTH_SOCK is not set: start ssh-agent or set ssh.identity_file")
		}
		// Connections to the agent are opened per signature request; the
		// agent stays the owner of the keys.
		methods = append(methods, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			ac, err := net.Dial("unix", sock)
			if err != nil {
				return nil, fmt.Errorf("ssh agent at %s: %w", sock, err)
			}
			return agent.NewClient(ac).Signers()
		}))
	}
	if cfg.IdentityFile != "" {
		pem, err := os.ReadFile(cfg.IdentityFile)
		if err != nil {
			return nil, fmt.Errorf("ssh.identity_file: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			var missing *ssh.PassphraseMissingError
			if errors.As(err, &missing) {
				return nil, fmt.Errorf("ssh.identity_file %s is encrypted: load it into ssh-agent and set ssh.agent: true", cfg.IdentityFile)
			}
			return nil, fmt.Errorf("ssh.identity_file %s: %w", cfg.IdentityFile, err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	return methods, nil
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

// Run runs a shell command on the host, feeding it stdin (may be nil), and
// returns its stdout. The command
// is given to the remote shell as is: callers quote every argument with
// Quote. A non-zero exit is an error carrying the command's stderr.
func (c *Conn) Run(ctx context.Context, command string, stdin []byte) ([]byte, error) {
	sess, err := c.client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("%s: ssh session: %w", c.Endpoint.Name, err)
	}
	defer sess.Close()
	if stdin != nil {
		sess.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr strings.Builder
	sess.Stdout = &stdout
	sess.Stderr = &stderr
	done := make(chan error, 1)
	go func() { done <- sess.Run(command) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGTERM)
		sess.Close()
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
// (direct-tcpip) or "unix" to a socket path (direct-streamlocal).
func (c *Conn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.client.DialContext(ctx, network, addr)
}

// Close closes the connection (and the jump host connection, if any).
func (c *Conn) Close() error {
	err := c.client.Close()
	if c.jump != nil {
		c.jump.Close()
	}
	return err
}

// Quote returns s quoted for a POSIX shell, safe to put in a remote command.
func Quote(s string) string { return shell.Quote(s) }
