// Command termshot runs a command under a pseudo-terminal and records what
// it draws: an asciicast v2 recording (play it with `asciinema play`) and
// text screenshots of the screen, one taken while the run is in progress
// (the busiest frame: the most hosts mid-step or done) and one at the end. It is
// how the README's picture of gantry's live view is made:
//
//	go run ./lab/cmd/termshot -cast docs/live-view.cast -shot docs/live-view.txt -- bin/gantry deploy www@abc1234 --env lab
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/creack/pty"
	"github.com/hinshun/vt10x"
)

func main() {
	cast := flag.String("cast", "", "write an asciicast v2 recording to `FILE`")
	shot := flag.String("shot", "", "write the busiest and the final screen as text to `FILE`")
	cols := flag.Int("cols", 110, "terminal width")
	rows := flag.Int("rows", 30, "terminal height")
	busy := flag.String("busy", "draining,stopping,starting,health-checking,restoring,in service", "comma-separated words whose count makes a frame busy")
	flag.Parse()
	if flag.NArg() == 0 {
		log.Fatal("termshot: give the command after --")
	}
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(*cols), Rows: uint16(*rows)})
	if err != nil {
		log.Fatal(err)
	}
	screen := vt10x.New(vt10x.WithSize(*cols, *rows))
	start := time.Now()
	var mu sync.Mutex
	var frames [][]any // asciicast events: [seconds, "o", data]
	bestScore, best := -1, ""
	words := strings.Split(*busy, ",")
	buf := make([]byte, 32<<10)
	for {
		n, err := ptmx.Read(buf)
		if n > 0 {
			mu.Lock()
			frames = append(frames, []any{time.Since(start).Seconds(), "o", string(buf[:n])})
			_, _ = screen.Write(buf[:n])
			text := screen.String()
			score := 0
			for _, w := range words {
				score += strings.Count(text, w)
			}
			if score > bestScore {
				bestScore, best = score, text
			}
			mu.Unlock()
		}
		if err == io.EOF || err != nil {
			break
		}
	}
	code := 0
	if err := cmd.Wait(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			log.Fatal(err)
		}
	}
	final := screen.String()
	if *cast != "" {
		f, err := os.Create(*cast)
		if err != nil {
			log.Fatal(err)
		}
		header, _ := json.Marshal(map[string]any{"version": 2, "width": *cols, "height": *rows, "timestamp": start.Unix(), "title": strings.Join(flag.Args(), " ")})
		fmt.Fprintf(f, "%s\n", header)
		for _, ev := range frames {
			line, _ := json.Marshal(ev)
			fmt.Fprintf(f, "%s\n", line)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
	if *shot != "" {
		out := "# during the run\n" + trim(best) + "\n# at the end\n" + trim(final)
		if err := os.WriteFile(*shot, []byte(out), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Print(trim(final))
	os.Exit(code)
}

// trim drops trailing spaces and blank lines of a screen dump.
func trim(screen string) string {
	lines := strings.Split(screen, "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n") + "\n"
}
