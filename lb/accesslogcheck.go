package lb

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/canary"
	"github.com/gantry-dev/gantry/internal/shell"
)

// ErrAccessLog is returned (wrapped) by CheckAccessLog when a load
// balancer's access log cannot judge a canary: it is missing, unreadable,
// or not written in a format with the upstream fields. The message gives
// the log_format and access_log lines to add.
var ErrAccessLog = errors.New("access log cannot judge a canary")

// recentLines is how many of the log's last lines the check reads when
// nginx's configuration does not say how the log is written.
const recentLines = 50

// CheckAccessLog is the pre-flight check of a canary's access log on this
// load balancer: the file exists and can be read, and its format has the
// tagged upstream fields (canary.Tags). The format is the one of the
// access_log directives that write the file in nginx's configuration
// (the test command with -T); when none names it (a symlink, a variable
// in the path, no -T), the log's last lines must carry the fields.
func (n Options) CheckAccessLog(ctx context.Context, file string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := n.run(ctx, checkAccessLogScript(n.TestCommand, file), nil)
	if err != nil {
		return fmt.Errorf("%s: checking access log %s: %w", n.Name, file, err)
	}
	return AccessLogProblem(n.Name, n.TestCommand, file, string(out))
}

// Markers between the parts of checkAccessLogScript's output.
const (
	tailMarker   = "#gantry: tail"
	confMarker   = "#gantry: nginx -T"
	noConfMarker = "#gantry: nginx -T failed"
)

// checkAccessLogScript prints whether file is a readable file, its last
// lines, then nginx's configuration and how it was built (discoverScript).
func checkAccessLogScript(testCmd, file string) string {
	return fmt.Sprintf(`f=%s
if [ ! -e "$f" ]; then echo missing; elif [ ! -f "$f" ]; then echo notfile; elif [ ! -r "$f" ]; then echo unreadable; else echo ok; fi
echo %s
[ -f "$f" ] && [ -r "$f" ] && tail -n %d -- "$f" | cut -c1-4096
echo %s
( %s ) 2>/dev/null || echo %s
exit 0
`, shell.Quote(file), shell.Quote(tailMarker), recentLines, shell.Quote(confMarker), discoverScript(testCmd), shell.Quote(noConfMarker))
}

// AccessLogProblem judges checkAccessLogScript's output for access log
// file of load balancer lbName: nil when a canary can be judged from it,
// else an ErrAccessLog error that says why and what to add.
func AccessLogProblem(lbName, testCmd, file, out string) error {
	state, rest, _ := strings.Cut(out, "\n")
	_, rest, _ = strings.Cut(rest, tailMarker+"\n")
	recent, conf, _ := strings.Cut(rest, confMarker+"\n")
	fix := fmt.Sprintf("add this line to the http block of %s's nginx configuration:\n    %s\nand write the log in that format (the access_log line for this file):\n    %s",
		lbName, canary.LogFormatLine, canary.AccessLogLine(file))
	fail := func(why string) error {
		return fmt.Errorf("%s: %w: %s; %s", lbName, ErrAccessLog, why, fix)
	}
	switch strings.TrimSpace(state) {
	case "ok":
	case "missing":
		return fail(fmt.Sprintf("%s does not exist", file))
	case "notfile":
		return fail(fmt.Sprintf("%s is not a regular file", file))
	case "unreadable":
		return fmt.Errorf("%s: %w: %s cannot be read by the SSH user; let it read the file (e.g. add it to the group that owns the log, adm on Debian)", lbName, ErrAccessLog, file)
	default:
		return fmt.Errorf("%s: checking access log %s: unexpected output %q", lbName, file, state)
	}

	if !strings.HasPrefix(conf, noConfMarker) {
		dump, version, _ := strings.Cut(conf, versionMarker+"\n")
		formats := logFormatsWriting(dump, testCmd, version, file)
		if len(formats) > 0 {
			for _, f := range formats {
				if missing := missingTags(f.text); len(missing) > 0 {
					return fail(fmt.Sprintf("%s is written in log format %q, which lacks %s", file, f.name, strings.Join(missing, " ")))
				}
			}
			return nil
		}
	}
	// nginx's configuration does not say: the last lines must.
	lines, good := 0, 0
	for _, l := range strings.Split(strings.TrimRight(recent, "\n"), "\n") {
		if l == "" {
			continue
		}
		lines++
		if a, ok := canary.ParseLine(l); ok && len(a) > 0 {
			good++
		}
	}
	switch {
	case good > 0:
		return nil
	case lines == 0:
		return fail(fmt.Sprintf("no access_log directive in nginx's configuration (%s -T) writes %s, and it is empty, so its format cannot be told", testCmd, file))
	default:
		return fail(fmt.Sprintf("no access_log directive in nginx's configuration (%s -T) writes %s, and none of its last %d lines has the fields %s", testCmd, file, lines, strings.Join(canary.Tags[:], " ")))
	}
}

// logFormat is the format of an access_log directive: its name and its
// format string.
type logFormat struct {
	name, text string
}

// logFormatsWriting returns the formats of the access_log directives of an
// nginx -T dump that write file (a relative path is relative to nginx's
// prefix). An access_log with no format name uses "combined".
func logFormatsWriting(dump, testCmd, version, file string) []logFormat {
	formats := map[string]string{
		"combined": `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`,
	}
	prefix := prefixArg(testCmd)
	if prefix == "" {
		prefix = configureArg(version, "--prefix")
	}
	if prefix == "" {
		prefix = defaultPrefix
	}
	want := path.Clean(file)
	var uses []string
	for _, st := range statements(dump) {
		w := st.words
		switch {
		case len(w) >= 3 && w[0] == "log_format":
			var text []string
			for _, x := range w[2:] {
				if !strings.HasPrefix(x, "escape=") {
					text = append(text, x)
				}
			}
			formats[w[1]] = strings.Join(text, "")
		case len(w) >= 2 && w[0] == "access_log" && w[1] != "off":
			p := w[1]
			if !path.IsAbs(p) {
				p = path.Join(prefix, p)
			}
			if path.Clean(p) != want {
				continue
			}
			name := "combined"
			if len(w) >= 3 && !strings.Contains(w[2], "=") {
				name = w[2]
			}
			uses = append(uses, name)
		}
	}
	// Formats are looked up once all are read: nginx -T may dump the
	// file with the access_log before the one with its log_format.
	var out []logFormat
	for _, name := range uses {
		out = append(out, logFormat{name: name, text: formats[name]})
	}
	return out
}

// missingTags returns the tags of canary.Tags format text lacks.
func missingTags(text string) []string {
	var missing []string
	for _, t := range canary.Tags {
		if !strings.Contains(text, t) {
			missing = append(missing, t)
		}
	}
	return missing
}
