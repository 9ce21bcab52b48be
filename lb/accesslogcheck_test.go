package lb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/canary"
	"github.com/gantry-dev/gantry/internal/shell"
)

// checkOutput builds what checkAccessLogScript prints.
func checkOutput(state, recent, dump string) string {
	out := state + "\n" + tailMarker + "\n" + recent + confMarker + "\n"
	if dump == "" {
		return out + noConfMarker + "\n"
	}
	return out + dump + "\n" + versionMarker + "\nnginx version: nginx/1.22.1\nconfigure arguments: --prefix=/usr/share/nginx\n"
}

const goodFormat = `log_format gantry_canary '$remote_addr [$time_local] "$request" $status '
                          'ua="$upstream_addr" us="$upstream_status" urt="$upstream_response_time"';`

func TestAccessLogProblem(t *testing.T) {
	const file = "/var/log/nginx/access.log"
	good := logLine("10.0.0.1:8080", "200", "0.001")
	tests := []struct {
		name  string
		out   string
		cmd   string
		want  string // "" when the log can judge a canary
		fixed bool   // the error gives the lines to add
	}{
		{"format with the fields", checkOutput("ok", "", "# configuration file /etc/nginx/nginx.conf:\nhttp {\n"+goodFormat+"\naccess_log /var/log/nginx/access.log gantry_canary;\n}\n"), "nginx -t", "", false},
		{"format defined in a later dumped file", checkOutput("ok", "", "# configuration file /etc/nginx/sites-enabled/app:\nserver { access_log /var/log/nginx/access.log gantry_canary buffer=32k; }\n# configuration file /etc/nginx/conf.d/log.conf:\n"+goodFormat+"\n"), "nginx -t", "", false},
		{"relative path under -p", checkOutput("ok", "", "# configuration file /srv/lb/nginx.conf:\nhttp {\n"+goodFormat+"\nserver { access_log access.log gantry_canary; }\n}\n"), "nginx -t -p /var/log/nginx/ -c x", "", false},
		{"escape=json", checkOutput("ok", "", "# configuration file /etc/nginx/nginx.conf:\nhttp { log_format j escape=json '{\"x\":1} ua=\"$upstream_addr\" us=\"$upstream_status\" urt=\"$upstream_response_time\"';\naccess_log /var/log/nginx/access.log j; }\n"), "nginx -t", "", false},
		{"default combined format", checkOutput("ok", good, "# configuration file /etc/nginx/nginx.conf:\nhttp { access_log /var/log/nginx/access.log; }\n"), "nginx -t",
			`lb1: access log cannot judge a canary: /var/log/nginx/access.log is written in log format "combined", which lacks ua="$upstream_addr" us="$upstream_status" urt="$upstream_response_time"`, true},
		{"a format with only the address", checkOutput("ok", "", "# configuration file /etc/nginx/nginx.conf:\nhttp { log_format main '$remote_addr ua=\"$upstream_addr\"';\naccess_log /var/log/nginx/access.log main; }\n"), "nginx -t",
			`/var/log/nginx/access.log is written in log format "main", which lacks us="$upstream_status" urt="$upstream_response_time"`, true},
		{"two directives, one without the fields", checkOutput("ok", "", "# configuration file /etc/nginx/nginx.conf:\nhttp {\n"+goodFormat+"\naccess_log /var/log/nginx/access.log gantry_canary;\nserver { access_log /var/log/nginx/access.log; }\n}\n"), "nginx -t",
			`written in log format "combined"`, true},
		{"not in the configuration: recent lines decide", checkOutput("ok", "garbage\n"+good, "# configuration file /etc/nginx/nginx.conf:\nhttp { access_log /var/log/other.log; }\n"), "nginx -t", "", false},
		{"no -T: recent lines without the fields", checkOutput("ok", "1.2.3.4 - - [x] \"GET / HTTP/1.1\" 200 1\n", ""), "nginx -t",
			"no access_log directive in nginx's configuration (nginx -t -T) writes /var/log/nginx/access.log, and none of its last 1 lines has the fields", true},
		{"no -T, empty log", checkOutput("ok", "", ""), "nginx -t", "and it is empty, so its format cannot be told", true},
		{"missing", checkOutput("missing", "", ""), "nginx -t", "lb1: access log cannot judge a canary: /var/log/nginx/access.log does not exist", true},
		{"a directory", checkOutput("notfile", "", ""), "nginx -t", "is not a regular file", true},
		{"unreadable", checkOutput("unreadable", "", ""), "nginx -t", "cannot be read by the SSH user", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := AccessLogProblem("lb1", tc.cmd, file, tc.out)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrAccessLog) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrAccessLog with %q", err, tc.want)
			}
			fix := "    " + canary.LogFormatLine + "\n" + "and write the log in that format (the access_log line for this file):\n    access_log /var/log/nginx/access.log gantry_canary;"
			if tc.fixed != strings.Contains(err.Error(), fix) {
				t.Errorf("lines to add given: %v, want %v:\n%v", !tc.fixed, tc.fixed, err)
			}
		})
	}
}

// TestCheckAccessLog runs the check's script against a fake nginx and
// real files.
func TestCheckAccessLog(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good log")
	plain := filepath.Join(dir, "plain.log")
	writeLog(t, good, "", os.O_TRUNC)
	writeLog(t, plain, "", os.O_TRUNC)
	conf := "# configuration file /etc/nginx/nginx.conf:\nhttp {\n" + goodFormat + "\naccess_log " + canary.AccessLogLine(good)[len("access_log "):] + "\naccess_log " + plain + ";\n}\n"
	nginx := filepath.Join(dir, "nginx")
	os.WriteFile(nginx, []byte("#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in -T) cat <<'EOF'\n"+conf+"EOF\n;; -V) echo 'configure arguments: --prefix=/usr/share/nginx' >&2 ;; esac; done\n"), 0o755)
	n := Options{Name: "lb1", Runner: &shell.LocalRunner{}, TestCommand: shell.Quote(nginx) + " -t -q"}
	ctx := context.Background()
	if err := n.CheckAccessLog(ctx, good); err != nil {
		t.Errorf("good log refused: %v", err)
	}
	err := n.CheckAccessLog(ctx, plain)
	if !errors.Is(err, ErrAccessLog) || !strings.Contains(err.Error(), `"combined"`) || !strings.Contains(err.Error(), canary.LogFormatLine) {
		t.Errorf("plain log: %v", err)
	}
	err = n.CheckAccessLog(ctx, filepath.Join(dir, "nope.log"))
	if !errors.Is(err, ErrAccessLog) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing log: %v", err)
	}
}
