// Package names holds the rules for the names gantry takes from outside
// (EC2 tags, the config) and puts into nginx upstream files, shell commands
// and file paths on remote machines: host names, service names, zones,
// addresses and Docker socket paths. Discovery and the config check names
// with these rules and say what is wrong; the writers of files and commands
// check again (Safe, SafeAddr), so that a name that skipped the first check
// still cannot inject a server line, a command or a path.
package names

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode/utf8"
)

// MaxLen is the longest host, service or zone name accepted from a tag or
// the config: 63 characters, a DNS label. It keeps every file name gantry
// derives from a name (HOST.json, ENV--SERVICE.rollback.json,
// SERVICE.conf.gantry-prev) far below the 255-byte limit of file names.
const MaxLen = 63

// MaxSafeLen bounds the names the writers of files and commands accept
// (Safe): longer than MaxLen because discovery derives names from a tag and
// an instance id ("web-1-i-0123456789abcdef0"), still short enough for any
// derived file name.
const MaxSafeLen = 128

// ErrInvalid is matched (errors.Is) by every error of this package.
var ErrInvalid = errors.New("invalid name")

// problem is an error of this package: what is wrong, without the value
// (callers name the value and where it came from).
type problem string

func (p problem) Error() string { return string(p) }

// Is makes every problem match ErrInvalid.
func (p problem) Is(target error) bool { return target == ErrInvalid }

func problemf(format string, args ...any) error { return problem(fmt.Sprintf(format, args...)) }

// Allowed says which characters a name may hold, for messages.
const Allowed = "letters, digits, '.', '_' and '-', starting with a letter or digit"

// Check returns nil when s is a valid host, service or zone name: 1 to
// MaxLen characters among ASCII letters, digits, '.', '_' and '-', the
// first a letter or digit (no "..", no leading '-' taken for an option,
// no hidden file). The error says what is wrong on one line, without the
// value: the caller names it, and where it came from.
func Check(s string) error {
	if s == "" {
		return problem("empty")
	}
	if len(s) > MaxLen {
		return problemf("%d characters, at most %d", len(s), MaxLen)
	}
	return chars(s)
}

// Safe reports whether s may go into an upstream file, a command or a file
// name: the characters of Check, at most MaxSafeLen of them.
func Safe(s string) bool {
	return s != "" && len(s) <= MaxSafeLen && chars(s) == nil
}

func chars(s string) error {
	if !utf8.ValidString(s) {
		return problem("not valid UTF-8")
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '.' || r == '_' || r == '-'):
		default:
			return problemf("%q at byte %d is not allowed: use only %s", r, i, Allowed)
		}
	}
	return nil
}

// maxAddrLen is the longest DNS name.
const maxAddrLen = 253

// CheckAddr returns nil when s is an IP address or a DNS name (letters,
// digits, '.', '-', at most 253 characters, not starting with '-' or '.').
func CheckAddr(s string) error {
	if s == "" {
		return problem("empty")
	}
	if net.ParseIP(s) != nil {
		return nil
	}
	if len(s) > maxAddrLen {
		return problemf("%d characters, at most %d", len(s), maxAddrLen)
	}
	if !utf8.ValidString(s) {
		return problem("not valid UTF-8")
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '.' || r == '-'):
		default:
			return problemf("%q at byte %d is not allowed: use an IP address or a DNS name", r, i)
		}
	}
	return nil
}

// SafeAddr reports whether s, an upstream server address (host:port, IPv6
// as [addr]:port), may go into an nginx file.
func SafeAddr(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || port == "" || strings.Trim(port, "0123456789") != "" || len(port) > 5 {
		return false
	}
	return CheckAddr(host) == nil
}

// MaxSocketPath is the longest path a unix socket may have (sun_path
// holds 108 bytes, the terminating NUL included).
const MaxSocketPath = 107

// CheckSocketPath returns nil when s is an absolute path made of safe
// characters (letters, digits, '.', '_', '-', '/') with no "." or ".."
// component, as a Docker socket path must be.
func CheckSocketPath(s string) error {
	if !strings.HasPrefix(s, "/") {
		return problem("not an absolute path")
	}
	if len(s) > MaxSocketPath {
		return problemf("%d characters, at most %d", len(s), MaxSocketPath)
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-', r == '/':
		default:
			return problemf("%q at byte %d is not allowed: use only letters, digits, '.', '_', '-' and '/'", r, i)
		}
	}
	for _, part := range strings.Split(s[1:], "/") {
		if part == "." || part == ".." {
			return problemf("a %q component is not allowed", part)
		}
	}
	return nil
}
