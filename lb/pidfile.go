package lb

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gantry-dev/gantry/internal/shell"
)

// ErrNoPidFile is returned (wrapped) when gantry has no pid file naming a
// running nginx master: without one it cannot wait for the requests in
// flight on a drained host, nor tell whether a reload was taken, so it
// changes nothing.
var ErrNoPidFile = errors.New("no pid file of a running nginx master")

// defaultPrefix is nginx's prefix when it was built without --prefix.
const defaultPrefix = "/usr/local/nginx/"

// masterPidFile returns the pid file of the nginx master: PidFile when it is
// set, else the one found from nginx's own configuration (found once, then
// remembered).
func (n *Nginx) masterPidFile(ctx context.Context) (string, error) {
	if n.PidFile != "" {
		return n.PidFile, nil
	}
	n.pidMu.Lock()
	defer n.pidMu.Unlock()
	if n.foundPidFile != "" {
		return n.foundPidFile, nil
	}
	p, err := n.Options.masterPidFile(ctx)
	if err != nil {
		return "", err
	}
	n.foundPidFile = p
	return p, nil
}

// masterPidFile returns the pid file of the nginx master: PidFile when it
// is set, else the one found from nginx's own configuration.
func (o Options) masterPidFile(ctx context.Context) (string, error) {
	if o.PidFile != "" {
		return o.PidFile, nil
	}
	p, err := o.findPidFile(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: %w: pid_file is not set and %v; set pid_file for load balancer %s in the config (environments.<env>.load_balancers[].pid_file) to the path of the \"pid\" directive of its nginx.conf, e.g. /run/nginx.pid", o.Name, ErrNoPidFile, err, o.Name)
	}
	return p, nil
}

// findPidFile asks nginx, through the test command with -T (the whole
// configuration) and -V (how it was built), where its master writes its
// pid, and checks that the file names a running process.
func (o Options) findPidFile(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := o.run(ctx, discoverScript(o.TestCommand), nil)
	if err != nil {
		return "", fmt.Errorf("asking nginx for its configuration (%s -T) failed: %w", o.TestCommand, err)
	}
	dump, version, _ := strings.Cut(string(out), versionMarker+"\n")
	p, err := PidFileOf(o.TestCommand, dump, version)
	if err != nil {
		return "", err
	}
	if err := o.checkPidFile(ctx, p); err != nil {
		return "", fmt.Errorf("the pid file nginx's configuration names, %s, %w", p, err)
	}
	return p, nil
}

// checkPidFile fails unless file holds the pid of a running process.
func (o Options) checkPidFile(ctx context.Context, file string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := o.run(ctx, checkPidScript(file), nil)
	if err != nil {
		return fmt.Errorf("could not be checked: %w", err)
	}
	if why := strings.TrimSpace(string(out)); why != "ok" {
		return errors.New(why)
	}
	return nil
}

// testThenCheckPidScript runs the test command (a failure exits
// exitTestFailed with its output on stderr), then checkPidScript.
func testThenCheckPidScript(testCmd, file string) string {
	return fmt.Sprintf("if ! out=$( { %s ; } 2>&1 ); then echo \"$out\" >&2; exit %d; fi\n%s", testCmd, exitTestFailed, checkPidScript(file))
}

// checkPidScript prints "ok" when file holds the pid of a running process,
// else why not.
func checkPidScript(file string) string {
	return fmt.Sprintf(`f=%s
[ -r "$f" ] || { echo "does not exist or cannot be read"; exit 0; }
m=; read -r m <"$f" || true; case "$m" in ''|*[!0-9]*) echo "holds no pid"; exit 0;; esac
[ -d "/proc/$m" ] || { echo "names process $m, which is not running"; exit 0; }
echo ok
`, shell.Quote(file))
}

// versionMarker separates the -T output from the -V output.
const versionMarker = "#gantry: nginx -V"

// discoverScript prints nginx's whole configuration (the test command with
// -T), then versionMarker, then how nginx was built (-V, on stderr).
func discoverScript(testCmd string) string {
	return fmt.Sprintf(`{ %s -T ; } || exit 1
echo
echo %s
{ %s -V ; } 2>&1 >/dev/null
exit 0
`, testCmd, shell.Quote(versionMarker), testCmd)
}

// PidFileOf returns the absolute path of the pid file of the nginx the test
// command tests: the "pid" directive of its configuration (dump: the
// output of nginx -T), else the --pid-path it was built with (version: the
// output of nginx -V), else logs/nginx.pid; a relative path is relative to
// the prefix (-p in the test command, else --prefix, else
// /usr/local/nginx/). The result is refused unless it is a clean absolute
// path of printable characters.
func PidFileOf(testCmd, dump, version string) (string, error) {
	if !strings.Contains(dump, "# configuration file ") {
		return "", errors.New("nginx -T printed no configuration")
	}
	p, ok := pidDirective(dump)
	if !ok {
		p = configureArg(version, "--pid-path")
	}
	if p == "" {
		p = "logs/nginx.pid"
	}
	if !path.IsAbs(p) {
		prefix := prefixArg(testCmd)
		if prefix == "" {
			prefix = configureArg(version, "--prefix")
		}
		if prefix == "" {
			prefix = defaultPrefix
		}
		p = path.Join(prefix, p)
	}
	if !path.IsAbs(p) || !printable(p) || len(p) > 4096 {
		return "", fmt.Errorf("nginx's pid file %q is not an absolute path", p)
	}
	return path.Clean(p), nil
}

// printable reports whether s is UTF-8 with no control character.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// pidDirective finds the argument of the "pid" directive in an nginx -T
// dump. nginx accepts "pid" only in the main context: outside any block
// (each dumped file's blocks are balanced, so depth 0 in the dump is depth
// 0 in its file; a file included in the main context counts too).
func pidDirective(dump string) (string, bool) {
	found, value := false, ""
	for _, st := range statements(dump) {
		if st.depth == 0 && len(st.words) == 2 && st.words[0] == "pid" {
			found, value = true, st.words[1]
		}
	}
	return value, found
}

// statement is one simple directive and how many blocks enclose it.
type statement struct {
	words []string
	depth int
}

// statements splits nginx configuration text into its simple statements
// (the words of each directive ended by ';'), skipping comments, honouring
// quotes and backslash escapes; block openings and closings end a
// statement too.
func statements(text string) []statement {
	var out []statement
	depth := 0
	var words []string
	var word strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	end := func() {
		flush()
		if len(words) > 0 {
			out = append(out, statement{words, depth})
		}
		words = nil
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '#' && !inWord:
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			q := c
			inWord = true
			for i++; i < len(text) && text[i] != q; i++ {
				if text[i] == '\\' && i+1 < len(text) {
					i++
				}
				word.WriteByte(text[i])
			}
		case c == '\\' && i+1 < len(text):
			i++
			word.WriteByte(text[i])
			inWord = true
		case c == ';':
			end()
		case c == '{':
			end()
			depth++
		case c == '}':
			end()
			depth--
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			flush()
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	return out
}

// configureArg returns the value of --name=VALUE in nginx -V output.
func configureArg(version, name string) string {
	for _, f := range strings.Fields(version) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return strings.Trim(v, `'"`)
		}
	}
	return ""
}

// prefixArg returns the -p argument of an nginx command line ("-p DIR" or
// "-pDIR"), or "".
func prefixArg(cmd string) string {
	fields := strings.Fields(cmd)
	// Options before the nginx word belong to a wrapper (sudo, docker exec).
	for i, f := range fields {
		if path.Base(strings.Trim(f, `'"`)) == "nginx" {
			fields = fields[i+1:]
			break
		}
	}
	for i, f := range fields {
		switch {
		case f == "-p" && i+1 < len(fields):
			return strings.Trim(fields[i+1], `'"`)
		case strings.HasPrefix(f, "-p") && len(f) > 2 && !strings.HasPrefix(f, "-p-"):
			return strings.Trim(f[2:], `'"`)
		}
	}
	return ""
}
