package names

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"web-1", true},
		{"Web_1.prod", true},
		{"h", true},
		{"10", true},
		{"host2", true},
		{strings.Repeat("a", MaxLen), true},
		{strings.Repeat("a", MaxLen+1), false},
		{"", false},
		{"-rf", false},
		{".hidden", false},
		{"_x", false},
		{"..", false},
		{"../etc", false},
		{"a/b", false},
		{"web 1", false},
		{"web\n1", false},
		{"web\nserver 127.0.0.9:80;", false},
		{"web;", false},
		{"web{", false},
		{"web}", false},
		{"web#", false},
		{"web$(id)", false},
		{"web'1", false},
		{"web\x00", false},
		{"web\xff\xfe", false},
		{"wéb", false},
		{"web\t1", false},
		{"web (i-01)", false},
	} {
		err := Check(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("Check(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("Check(%q) = %v, not ErrInvalid", tc.name, err)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\n\x00") {
			t.Errorf("Check(%q): the message %q is not on one line", tc.name, err)
		}
		// Safe agrees on characters; it allows longer names.
		if len(tc.name) <= MaxLen && Safe(tc.name) != tc.ok {
			t.Errorf("Safe(%q) = %v, want %v", tc.name, Safe(tc.name), tc.ok)
		}
	}
	if !Safe("web-1-i-0123456789abcdef0" + strings.Repeat("x", MaxLen)) {
		t.Error("Safe refuses a derived name of less than MaxSafeLen")
	}
	if Safe(strings.Repeat("a", MaxSafeLen+1)) {
		t.Error("Safe accepts a name longer than MaxSafeLen")
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1", true},
		{"::1", true},
		{"ip-10-0-0-1.ec2.internal", true},
		{"localhost", true},
		{strings.Repeat("a", 253), true},
		{strings.Repeat("a", 254), false},
		{"", false},
		{"-x", false},
		{".x", false},
		{"10.0.0.1;", false},
		{"10.0.0.1\nserver 127.0.0.9:80", false},
		{"a_b", false},
		{"a/b", false},
		{"a b", false},
		{"\xff", false},
		{"127.0.0.1:80", false},
	} {
		if err := CheckAddr(tc.addr); (err == nil) != tc.ok {
			t.Errorf("CheckAddr(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

func TestSafeAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8080", true},
		{"[::1]:8080", true},
		{"web.internal:80", true},
		{"127.0.0.1", false},
		{"127.0.0.1:", false},
		{"127.0.0.1:80x", false},
		{"127.0.0.1:123456", false},
		{"127.0.0.1:80; server 127.0.0.9:80", false},
		{"127.0.0.1\nserver 127.0.0.9:80;\n:80", false},
		{"{:80", false},
	} {
		if got := SafeAddr(tc.addr); got != tc.ok {
			t.Errorf("SafeAddr(%q) = %v, want %v", tc.addr, got, tc.ok)
		}
	}
}

func TestCheckSocketPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/var/run/docker.sock", true},
		{"/run/user/1000/docker.sock", true},
		{"var/run/docker.sock", false},
		{"", false},
		{"/var/../etc/passwd", false},
		{"/var/./docker.sock", false},
		{"/var/run/docker.sock; rm -rf /", false},
		{"/var/run/docker.sock\n", false},
		{"/var/run/$(id).sock", false},
		{"/" + strings.Repeat("a", 200), false},
		{"/var/\xff", false},
	} {
		if err := CheckSocketPath(tc.path); (err == nil) != tc.ok {
			t.Errorf("CheckSocketPath(%q) = %v, want ok=%v", tc.path, err, tc.ok)
		}
	}
}
