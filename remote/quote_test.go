package remote

import (
	"encoding/base64"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	tests := []struct {
		in   string
		want string // the quoted form; the shell must give back in either way
	}{
		{in: "plain", want: "plain"},
		{in: "/var/run/docker.sock", want: "/var/run/docker.sock"},
		{in: "a=b,c:d@e+f%g", want: "a=b,c:d@e+f%g"},
		{in: "", want: "''"},
		{in: "two words", want: "'two words'"},
		{in: "it's", want: `'it'\''s'`},
		{in: "''", want: `''\'''\'''`},
		{in: "$(rm -rf /)", want: "'$(rm -rf /)'"},
		{in: "`id`", want: "'`id`'"},
		{in: "$HOME", want: "'$HOME'"},
		{in: "a;b|c&d>e<f", want: "'a;b|c&d>e<f'"},
		{in: "*", want: "'*'"},
		{in: "~root", want: "'~root'"},
		{in: "-n", want: "-n"},
		{in: "line1\nline2", want: "'line1\nline2'"},
		{in: `back\slash "dq"`, want: `'back\slash "dq"'`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			q := Quote(tc.in)
			if q != tc.want {
				t.Errorf("Quote(%q) = %q, want %q", tc.in, q, tc.want)
			}
			// printf, not echo: echo would eat "-n" and backslashes.
			out, err := exec.Command("sh", "-c", "printf '%s' "+q).CombinedOutput()
			if err != nil {
				t.Fatalf("sh -c printf %s: %v: %s", q, err, out)
			}
			if string(out) != tc.in {
				t.Errorf("the shell turned Quote(%q) = %s into %q", tc.in, q, out)
			}
		})
	}
}

func TestDockerConfigAuth(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name    string
		config  string
		server  string
		want    RegistryAuth
		wantOK  bool
		wantErr bool
	}{
		{
			name:   "auth field",
			config: `{"auths": {"registry.example.com": {"auth": "` + b64("bot:s3cr:et") + `"}}}`,
			server: "registry.example.com",
			want:   RegistryAuth{Server: "registry.example.com", Username: "bot", Password: "s3cr:et"},
			wantOK: true,
		},
		{
			name:   "username and password",
			config: `{"auths": {"127.0.0.1:5000": {"username": "bot", "password": "pw"}}}`,
			server: "127.0.0.1:5000",
			want:   RegistryAuth{Server: "127.0.0.1:5000", Username: "bot", Password: "pw"},
			wantOK: true,
		},
		{
			name:   "https prefix and trailing slash",
			config: `{"auths": {"https://registry.example.com/": {"auth": "` + b64("bot:pw") + `"}}}`,
			server: "registry.example.com",
			want:   RegistryAuth{Server: "registry.example.com", Username: "bot", Password: "pw"},
			wantOK: true,
		},
		{
			name:   "http prefix",
			config: `{"auths": {"http://127.0.0.1:5000": {"username": "bot", "password": "pw"}}}`,
			server: "127.0.0.1:5000",
			want:   RegistryAuth{Server: "127.0.0.1:5000", Username: "bot", Password: "pw"},
			wantOK: true,
		},
		{
			name: "other servers ignored",
			config: `{"auths": {
				"other.example.com": {"auth": "` + b64("x:y") + `"},
				"registry.example.com": {"auth": "` + b64("bot:pw") + `"}
			}}`,
			server: "registry.example.com",
			want:   RegistryAuth{Server: "registry.example.com", Username: "bot", Password: "pw"},
			wantOK: true,
		},
		{
			name:   "no entry for server",
			config: `{"auths": {"other.example.com": {"auth": "` + b64("x:y") + `"}}}`,
			server: "registry.example.com",
		},
		{
			name:   "port must match",
			config: `{"auths": {"registry.example.com:5000": {"auth": "` + b64("x:y") + `"}}}`,
			server: "registry.example.com",
		},
		{
			name:   "credential helper only",
			config: `{"auths": {"registry.example.com": {}}, "credsStore": "desktop"}`,
			server: "registry.example.com",
		},
		{
			name:   "no auths",
			config: `{}`,
			server: "registry.example.com",
		},
		{
			name:    "auth not base64",
			config:  `{"auths": {"registry.example.com": {"auth": "%%%"}}}`,
			server:  "registry.example.com",
			wantErr: true,
		},
		{
			name:    "not json",
			config:  `auths: {}`,
			server:  "registry.example.com",
			wantErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := DockerConfigAuth([]byte(tc.config), tc.server)
			if (err != nil) != tc.wantErr {
				t.Fatalf("DockerConfigAuth error = %v, want error %v", err, tc.wantErr)
			}
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("DockerConfigAuth = %+v, %v; want %+v, %v", got, ok, tc.want, tc.wantOK)
			}
			if err != nil && tc.wantErr && len(got.Password) > 0 {
				t.Errorf("credential returned with an error")
			}
		})
	}
}

func TestRegistryAuthStringHidesPassword(t *testing.T) {
	a := RegistryAuth{Server: "registry.example.com", Username: "bot", Password: "hunter2"}
	if got, want := a.String(), "RegistryAuth{bot@registry.example.com}"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%v", a), fmt.Sprintf("%+v", a), fmt.Sprintf("%s", a)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("formatted credential shows the password: %s", s)
		}
	}
}
