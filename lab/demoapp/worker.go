package main

import (
	"log"
	"math/rand"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// runWorker is the worker mode (WORKER=1): no port; it takes one job after
// another, each lasting between JOB_MIN and JOB_MAX (default 1s and 2s),
// and logs each job's start and end, to stderr and, with JOB_LOG, to that
// file (e.g. in a volume, so the record outlives the container). On
// SIGTERM or SIGINT it finishes the job in hand, then exits 0; BROKEN=1
// makes it crash (exit 1) 300 ms after it starts. BROKEN_WORKER=1 (a
// release whose web side is fine) keeps it running but makes its health
// command, `demoapp workercheck`, fail.
func runWorker(version, hostName string) {
	jobMin, jobMax := envDuration("JOB_MIN", time.Second), envDuration("JOB_MAX", 2*time.Second)
	if jobMax < jobMin {
		jobMax = jobMin
	}
	logFile := os.Getenv("JOB_LOG")
	record := func(line string) {
		log.Print(line)
		if logFile != "" {
			if err := appendLine(logFile, line); err != nil {
				log.Fatalf("JOB_LOG: %v", err)
			}
		}
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	var crash <-chan time.Time
	if os.Getenv("BROKEN") == "1" {
		crash = time.After(300 * time.Millisecond)
	}
	id := version + "@" + hostName + "#" + time.Now().UTC().Format("150405.000")
	record("worker " + id + " ready")
	rnd := rand.New(rand.NewSource(time.Now().UnixNano()))
	for n := 1; ; n++ {
		select {
		case sig := <-stop:
			record("worker " + id + " got " + sig.String() + " between jobs: exiting")
			return
		case <-crash:
			record("worker " + id + " crashing (BROKEN=1)")
			os.Exit(1)
		default:
		}
		job := id + " job " + strconv.Itoa(n)
		d := jobMin + time.Duration(rnd.Int63n(int64(jobMax-jobMin)+1))
		record("start " + job)
		done := time.After(d)
		for waiting := true; waiting; {
			select {
			case <-done:
				waiting = false
			case sig := <-stop:
				// Finish the job in hand, then go.
				log.Printf("got %s during %s: finishing it first", sig, job)
				<-done
				record("done " + job)
				record("worker " + id + " exiting after " + job)
				return
			case <-crash:
				record("worker " + id + " crashing (BROKEN=1) during " + job)
				os.Exit(1)
			}
		}
		record("done " + job)
	}
}

func envDuration(key string, def time.Duration) time.Duration {
	s := os.Getenv(key)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		log.Fatalf("bad %s %q: want a Go duration", key, s)
	}
	return d
}
