//go:build !linux

package remote

import "net"

// peerIsMe: without SO_PEERCRED, the keeper's private directory is what
// keeps other users out.
func peerIsMe(net.Conn) bool { return true }
