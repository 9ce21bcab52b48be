package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildGantry builds the gantry binary into a temporary directory and
// returns that directory.
func buildGantry(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "gantry"), ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// TestBashCompletion: the script of `gantry completion bash`, sourced in a
// real bash, registers a completion for gantry, and that completion offers
// gantry's commands, a command's flags, and never runs the command typed.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on this machine")
	}
	dir := buildGantry(t)
	// What the shell would do on TAB after each line; "" is the word being
	// completed when the line ends with a space.
	script := `set -e
source <(gantry completion bash)
complete -p gantry
complete_line() {
  COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
  _gantry_bash_autocomplete
  echo "$*: ${COMPREPLY[*]}"
}
complete_line gantry ""
complete_line gantry pr
complete_line gantry deploy --e
complete_line gantry promote www --from staging --to production ""
`
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "GANTRY_CONFIG="+filepath.Join(t.TempDir(), "none.yml"))
	outb, err := cmd.CombinedOutput()
	out := string(outb)
	t.Logf("bash:\n%s", out)
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	for _, want := range []string{
		"complete -o bashdefault -o default -o nospace -F _gantry_bash_autocomplete gantry",
		"gantry : deploy plan rollback promote history inventory prune lock logs exec completion decommission recommission maintenance version config",
		"gantry pr: promote prune",
		"gantry deploy --e: --env",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("bash output does not contain %q", want)
		}
	}
	// Completing after a full promote line lists no flags as errors and
	// ran nothing: no config was read (it does not exist).
	if strings.Contains(out, "none.yml") || strings.Contains(out, "promoting") {
		t.Errorf("completing a promote line ran the command:\n%s", out)
	}
}

// TestGenerateBashCompletion: the binary answers the completion flag with
// its commands, also after arguments that flagsFirst would reorder.
func TestGenerateBashCompletion(t *testing.T) {
	dir := buildGantry(t)
	gantry := filepath.Join(dir, "gantry")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--generate-bash-completion"}, []string{"deploy", "rollback", "promote", "inventory", "history", "lock", "logs", "exec", "completion", "config", "version"}},
		{[]string{"logs", "--f", "--generate-bash-completion"}, []string{"--follow"}},
		{[]string{"lock", "--generate-bash-completion"}, []string{"status", "acquire", "release"}},
		{[]string{"promote", "--f", "--generate-bash-completion"}, []string{"--from", "--force"}},
		// flagsFirst would move www@abc1234 behind "--", where urfave/cli
		// no longer sees the completion flag and would run the deploy.
		{[]string{"deploy", "www@abc1234", "--env", "staging", "--generate-bash-completion"}, nil},
		// After "--" urfave/cli would take the flag for an argument.
		{[]string{"prune", "--env", "staging", "--", "--generate-bash-completion"}, nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, gantry, append([]string{"--config", filepath.Join(t.TempDir(), "none.yml")}, tc.args...)...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("exit %v:\n%s", err, out)
			}
			lines := strings.Fields(string(out))
			for _, w := range tc.want {
				if !contains(lines, w) {
					t.Errorf("output does not list %q:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), "none.yml") {
				t.Errorf("the command ran (it read the config):\n%s", out)
			}
		})
	}
}

// TestCompletionScripts: every shell gets a script naming gantry; an
// unknown shell is bad input.
func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "complete -o bashdefault -o default -o nospace -F _gantry_bash_autocomplete gantry",
		"zsh":  "compdef _gantry_zsh_autocomplete gantry",
		"fish": "complete -r -c gantry -n '__fish_gantry_no_subcommand' -a 'promote'",
	} {
		t.Run(shell, func(t *testing.T) {
			out := captureStdout(t, func() {
				if code := run(context.Background(), []string{"gantry", "completion", shell}, &tracker{}); code != 0 {
					t.Errorf("exit %d", code)
				}
			})
			if !strings.Contains(out, want) {
				t.Errorf("the %s script does not contain %q:\n%s", shell, want, out)
			}
		})
	}
	if code := run(context.Background(), []string{"gantry", "completion", "tcsh"}, &tracker{}); code != exitUsage {
		t.Errorf("completion tcsh: exit %d, want %d", code, exitUsage)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// captureStdout returns what fn printed on os.Stdout.
func captureStdout(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		done <- b.String()
	}()
	fn()
	os.Stdout = saved
	w.Close()
	return <-done
}
