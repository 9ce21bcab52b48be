// Command gantry deploys SHA-tagged Docker images to a fleet of hosts behind
// nginx load balancers, batch by batch, with no failed requests.
//
// main starts up (signals, the app) and exits with run's code. Each command
// is one file (deploy.go, rollback.go, lock.go, ...): a constructor of its
// *cli.Command, an options struct read from its flags, and a run function
// that makes one call into package fleet. flags.go declares the shared
// flags, exit.go maps errors and reports to exit codes, argv.go lets flags
// follow arguments.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gantry-dev/gantry/internal/hurry"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &tracker{}
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	hurried := make(chan struct{})
	ctx = hurry.With(ctx, hurried)
	go handleSignals(sigs, cancel, hurried, tr)
	os.Exit(run(ctx, os.Args, tr))
}

// handleSignals reacts to SIGINT, SIGTERM and SIGHUP. First: cancel, so
// gantry stops starting new steps and puts the host in progress back.
// Second: cut the waits of that work short (requests in flight, more
// health-check passes; hurried is closed), so the host is back at once,
// but never abandon it mid-swap. Third: print the state and exit now. (CI
// systems send SIGINT, then SIGTERM a few seconds later, then SIGKILL; a
// dropped terminal sends SIGHUP.) A command that changes nothing (logs,
// exec) is just stopped: cancelled on the first, exited on the second.
func handleSignals(sigs <-chan os.Signal, cancel context.CancelFunc, hurried chan<- struct{}, tr *tracker) {
	s := <-sigs
	if tr.interruptIsQuiet() {
		cancel()
		<-sigs
		os.Exit(exitInterrupted)
	}
	fmt.Fprintf(os.Stderr, "gantry: %s: finishing the current step so every host serves, then stopping (again to cut waits short, a third time to abort)\n", s)
	cancel()
	s = <-sigs
	fmt.Fprintf(os.Stderr, "gantry: %s again: putting the host in progress back now, without waiting for requests in flight (again to abort at once)\n", s)
	close(hurried)
	<-sigs
	fmt.Fprintln(os.Stderr, "gantry: aborted; last known state of each host:")
	tr.print(os.Stderr)
	os.Exit(exitInterrupted)
}
