package remote

import (
	"net"
	"os"
	"syscall"
)

// peerIsMe reports whether the process at the other end of nc runs as
// this process's user (the keeper's socket is private already; this is
// the second lock, as OpenSSH's ControlMaster checks its clients).
func peerIsMe(nc net.Conn) bool {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return false
	}
	return int(cred.Uid) == os.Getuid()
}
