package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// flagsFirst moves a command's flags ahead of its arguments, so that the
// natural "gantry deploy www@abc123 --env staging" works: urfave/cli v2
// stops reading flags at the first argument (Go's flag package) and has
// no option to read flags after arguments, so the rewrite is the one way
// to keep that command line. Global flags given after the command move
// before it; arguments go after "--", so that one starting with "-" stays
// an argument. A completion request is only cleaned (completionWords).
func flagsFirst(app *cli.App, args []string) []string {
	if words, ok := completionWords(args); ok {
		return words
	}
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	i := 1
	// Global flags before the command stay where they are.
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		out = append(out, args[i])
		if takesValue(app.Flags, args[i]) && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
		i++
	}
	if i >= len(args) {
		return out
	}
	cmd := app.Command(args[i])
	out = append(out, args[i])
	i++
	if cmd == nil {
		return append(out, args[i:]...)
	}
	// Descend into subcommands ("lock status"): their flags are the ones read.
	for i < len(args) && len(cmd.Subcommands) > 0 {
		sub := cmd.Command(args[i])
		if sub == nil {
			break
		}
		out = append(out, args[i])
		cmd = sub
		i++
	}
	var flags, positional []string
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && len(a) > 1 && isFlag(app.Flags, a) && !isFlag(cmd.Flags, a):
			// A global flag given after the command: move it before.
			global := []string{a}
			if takesValue(app.Flags, a) && i+1 < len(args) {
				i++
				global = append(global, args[i])
			}
			out = append(append(out[:len(out)-1:len(out)-1], global...), out[len(out)-1])
		case strings.HasPrefix(a, "-") && len(a) > 1:
			flags = append(flags, a)
			if takesValue(cmd.Flags, a) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			positional = append(positional, a)
		}
	}
	out = append(out, flags...)
	if len(positional) > 0 {
		out = append(out, "--")
	}
	return append(out, positional...)
}

// isFlag reports whether arg names one of flags.
func isFlag(flags []cli.Flag, arg string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// takesValue reports whether arg ("--env", "-e") names a flag that takes a
// separate value.
func takesValue(flags []cli.Flag, arg string) bool {
	if strings.Contains(arg, "=") {
		return false
	}
	name := strings.TrimLeft(arg, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				dv, ok := f.(cli.DocGenerationFlag)
				return ok && dv.TakesValue()
			}
		}
	}
	return false
}
