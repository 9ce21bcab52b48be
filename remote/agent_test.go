package remote

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/agent"
)

// startAgent serves an ssh-agent holding one key on a unix socket, for the
// length of the test. ended receives once per agent connection the client
// closed; opened counts the connections.
func startAgent(t *testing.T) (sock string, opened *atomic.Int32, ended chan struct{}) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock = filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	opened = &atomic.Int32{}
	ended = make(chan struct{}, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			opened.Add(1)
			go func() {
				_ = agent.ServeAgent(keyring, c) // returns when the client closes
				c.Close()
				ended <- struct{}{}
			}()
		}
	}()
	return sock, opened, ended
}

// TestAgentConnectionClosedAfterLogin: every dial, redials included,
// closes the agent connection it opened once logged in.
func TestAgentConnectionClosedAfterLogin(t *testing.T) {
	sock, opened, ended := startAgent(t)
	t.Setenv("SSH_AUTH_SOCK", sock)
	srv := startSSHServer(t)
	cfg := clientFiles(t, srv)
	cfg.IdentityFile = ""
	cfg.UseAgent = true

	c := dialTest(t, cfg, srv.Addr)
	runEcho(t, t.Context(), c, "one")
	srv.cut()
	runEcho(t, t.Context(), c, "two") // after a redial
	c2 := dialTest(t, cfg, srv.Addr)
	runEcho(t, t.Context(), c2, "three")

	n := int(opened.Load())
	if n < 3 {
		t.Fatalf("%d agent connections opened, want one per login (3)", n)
	}
	for i := 0; i < n; i++ {
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d agent connections still open after login", n-i, n)
		}
	}
}
