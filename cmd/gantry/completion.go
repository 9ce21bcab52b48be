package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

// completeFlag is the flag urfave/cli's completion scripts append to the
// words typed so far to ask gantry what may come next.
const completeFlag = "--generate-bash-completion"

// completionWords recognises a completion request (args ending with
// completeFlag) and returns the words to hand urfave/cli: as typed, for
// urfave/cli reads the flag only in last place, less any "--", after which
// urfave/cli would take the flag for an argument and run the command.
func completionWords(args []string) ([]string, bool) {
	if len(args) < 2 || args[len(args)-1] != completeFlag {
		return nil, false
	}
	words := make([]string, 0, len(args))
	for _, a := range args {
		if a != "--" {
			words = append(words, a)
		}
	}
	return words, true
}

// bashCompletion is urfave/cli's documented bash script
// (autocomplete/bash_autocomplete) with the program name fixed to gantry, so
// that it also works when sourced from a pipe, and with the words read from
// COMP_WORDS when the bash-completion package is not installed. The typed
// words are passed as arguments, not through eval, so completing never
// runs what the line contains.
const bashCompletion = `# bash completion for gantry
# Load it with:  source <(gantry completion bash)

_gantry_bash_autocomplete() {
  local cur opts words cword
  COMPREPLY=()
  if declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
    _get_comp_words_by_ref -n "=:" cur words cword
  else
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
    cur="${COMP_WORDS[COMP_CWORD]}"
  fi
  words=("${words[@]:0:$cword}")
  if [[ "$cur" == "-"* ]]; then
    opts=$("${words[@]}" "$cur" ` + completeFlag + ` 2>/dev/null)
  else
    opts=$("${words[@]}" ` + completeFlag + ` 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
  return 0
}

complete -o bashdefault -o default -o nospace -F _gantry_bash_autocomplete gantry
`

// zshCompletion is urfave/cli's documented zsh script
// (autocomplete/zsh_autocomplete) for gantry.
const zshCompletion = `#compdef gantry
# zsh completion for gantry
# Load it with:  source <(gantry completion zsh)
# (compinit must have run: autoload -Uz compinit && compinit)

_gantry_zsh_autocomplete() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} ` + completeFlag + `)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ` + completeFlag + `)}")
  fi

  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}

compdef _gantry_zsh_autocomplete gantry
`

// newCompletionCmd is gantry completion: it prints a shell completion
// script.
func newCompletionCmd() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: `Prints a script that completes gantry's commands and flags in the shell.

Examples:
   source <(gantry completion bash)        # in ~/.bashrc
   source <(gantry completion zsh)         # in ~/.zshrc, after compinit
   gantry completion fish > ~/.config/fish/completions/gantry.fish`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("completion: want exactly one shell: bash, zsh or fish")
			}
			return writeCompletion(os.Stdout, c.App, c.Args().First())
		},
	}
}

// writeCompletion writes the completion script of shell for app to w.
func writeCompletion(w io.Writer, app *cli.App, shell string) error {
	switch shell {
	case "bash":
		_, err := io.WriteString(w, bashCompletion)
		return err
	case "zsh":
		_, err := io.WriteString(w, zshCompletion)
		return err
	case "fish":
		script, err := app.ToFishCompletion()
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, script)
		return err
	}
	return fmt.Errorf("completion: unknown shell %q: want bash, zsh or fish", shell)
}
