// Command demoapp is the tiny HTTP service that the gantry lab deploys as
// service "www". It is configured only through the environment:
//
//	LISTEN      address to listen on (default 127.0.0.1:8080)
//	VERSION     version string, baked into the image by lab/publish
//	HOST_NAME   name of the lab host it runs on
//	BROKEN      when "1", /healthz answers 500 (a release that never gets healthy)
//	BOOT_DELAY  Go duration to sleep before listening (a slow-starting release)
//	FAIL_SHARE  share (0..1) of ordinary requests (all but /healthz) answered
//	            500 "<VERSION> <HOST_NAME> failing (FAIL_SHARE)": every 1/share-th request, evenly
//	            spread; /healthz stays 200 (a release a canary must catch)
//	LATENCY     Go duration added before every ordinary request is answered
//	            (a slow release); /healthz answers at once
//	DATA_FILE   a file (e.g. in a volume) the app appends "<VERSION> <HOST_NAME>"
//	            to when it starts, and serves at GET /data
//	WORKER      when "1", a worker instead (see worker.go): no port, jobs of
//	            JOB_MIN..JOB_MAX (1s..2s), each start and end logged (and
//	            appended to JOB_LOG); SIGTERM finishes the job in hand
//
// GET / answers 200 with the first line "<VERSION> <HOST_NAME>".
// GET /healthz answers 200 "ok" (or 500 when BROKEN=1).
// GET /data answers 200 with DATA_FILE's content (404 without DATA_FILE).
// GET /slow?ms=N answers like / after N milliseconds (at most 60000): a slow
// request, in flight while a host is drained.
// On SIGTERM or SIGINT it stops accepting connections, lets in-flight
// requests finish (at most 10 s) and exits 0.
// It logs one line when it starts and one per signal, to stderr.
//
// With arguments it runs one small command instead of serving (the image
// is FROM scratch, so these are what `gantry exec` can run in it):
//
//	demoapp version      print "<VERSION> <HOST_NAME>"
//	demoapp echo ARGS... print each argument on its own line, as received
//	demoapp cat          copy stdin to stdout
//	demoapp exit N       print "exiting N" to stderr and exit with status N
//	demoapp release      append "<VERSION> <HOST_NAME> release" to DATA_FILE
//	                     (when set) and print it: a release command
//	                     (services.NAME.release) whose runs can be counted
//	demoapp workercheck  a worker's health command: exit 1 when BROKEN_WORKER=1
//	demoapp healthcheck  GET /healthz on LISTEN: exit 0 when it answers 200,
//	                     1 otherwise (a health command, or the image's
//	                     HEALTHCHECK with `lab/publish --healthcheck`)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("demoapp: ")
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-") {
		os.Exit(command(os.Args[1:]))
	}
	// Flags (e.g. a service's command: [--verbose]) are accepted and
	// ignored: the app is configured through its environment.

	listen := envOr("LISTEN", "127.0.0.1:8080")
	version := envOr("VERSION", "dev")
	hostName := envOr("HOST_NAME", "unknown")
	broken := os.Getenv("BROKEN") == "1"
	if os.Getenv("WORKER") == "1" {
		runWorker(version, hostName)
		return
	}

	var bootDelay time.Duration
	if s := os.Getenv("BOOT_DELAY"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			log.Fatalf("bad BOOT_DELAY %q: %v", s, err)
		}
		bootDelay = d
	}

	failShare := 0.0
	if s := os.Getenv("FAIL_SHARE"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || f > 1 {
			log.Fatalf("bad FAIL_SHARE %q: want a share between 0 and 1", s)
		}
		failShare = f
	}
	var latency time.Duration
	if s := os.Getenv("LATENCY"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			log.Fatalf("bad LATENCY %q: %v", s, err)
		}
		latency = d
	}

	dataFile := os.Getenv("DATA_FILE")
	if dataFile != "" {
		if err := appendLine(dataFile, version+" "+hostName); err != nil {
			log.Fatalf("DATA_FILE: %v", err)
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/data", func(w http.ResponseWriter, r *http.Request) {
		if dataFile == "" {
			http.NotFound(w, r)
			return
		}
		data, err := os.ReadFile(dataFile)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(data)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if broken {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 || ms > 60000 {
			http.Error(w, "ms must be 0..60000", http.StatusBadRequest)
			return
		}
		// A shutdown waits for this request (srv.Shutdown), as for any
		// in-flight request; only the client going away cuts it short.
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "%s %s\n", version, hostName)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s\n", version, hostName)
	})
	srv := &http.Server{Addr: listen, Handler: degrade(mux, version+" "+hostName, failShare, latency), ReadHeaderTimeout: 10 * time.Second}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)

	log.Printf("version=%s host=%s listen=%s broken=%v boot_delay=%s fail_share=%v latency=%s", version, hostName, listen, broken, bootDelay, failShare, latency)
	if bootDelay > 0 {
		select {
		case <-time.After(bootDelay):
		case sig := <-stop:
			log.Printf("got %s while booting, exiting", sig)
			return
		}
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()

	select {
	case err := <-errc:
		log.Fatalf("listen: %v", err)
	case sig := <-stop:
		log.Printf("got %s, shutting down", sig)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatalf("shutdown: %v", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("serve: %v", err)
	}
	log.Printf("stopped")
}

// degrade makes every ordinary request (all but /healthz) wait latency,
// and fails the share failShare of them with 500: request n fails when
// n·share reaches a new whole number, so exactly that share fails, evenly
// spread.
func degrade(next http.Handler, who string, failShare float64, latency time.Duration) http.Handler {
	if failShare == 0 && latency == 0 {
		return next
	}
	var count atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		if latency > 0 {
			t := time.NewTimer(latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		n := count.Add(1)
		if int64(float64(n)*failShare) > int64(float64(n-1)*failShare) {
			http.Error(w, who+" failing (FAIL_SHARE)", http.StatusInternalServerError)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// healthcheck probes the app's own /healthz: the exit code of a health
// command.
func healthcheck(listen string) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + listen + "/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "healthcheck: status", resp.StatusCode)
		return 1
	}
	fmt.Println("healthy")
	return 0
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// command runs one of the small commands of the package comment and
// returns the exit status.
func command(args []string) int {
	switch args[0] {
	case "version":
		fmt.Printf("%s %s\n", envOr("VERSION", "dev"), envOr("HOST_NAME", "unknown"))
		return 0
	case "echo":
		for _, a := range args[1:] {
			fmt.Println(a)
		}
		return 0
	case "cat":
		if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
			log.Printf("cat: %v", err)
			return 1
		}
		return 0
	case "exit":
		n := 0
		if len(args) > 1 {
			var err error
			if n, err = strconv.Atoi(args[1]); err != nil || n < 0 || n > 255 {
				log.Printf("exit: %q is not a status 0..255", args[1])
				return 2
			}
		}
		fmt.Fprintf(os.Stderr, "exiting %d\n", n)
		return n
	case "release":
		line := envOr("VERSION", "dev") + " " + envOr("HOST_NAME", "unknown") + " release"
		if path := os.Getenv("DATA_FILE"); path != "" {
			if err := appendLine(path, line); err != nil {
				log.Printf("release: %v", err)
				return 1
			}
		}
		fmt.Println(line)
		return 0
	case "healthcheck":
		return healthcheck(envOr("LISTEN", "127.0.0.1:8080"))
	case "workercheck":
		// The worker's health command: a broken release cannot reach its
		// queue.
		if os.Getenv("BROKEN_WORKER") == "1" {
			fmt.Fprintln(os.Stderr, "workercheck: queue unreachable (BROKEN_WORKER=1)")
			return 1
		}
		fmt.Println("worker ok")
		return 0
	}
	log.Printf("unknown command %q (want version, echo, cat, exit, release, healthcheck or workercheck)", args[0])
	return 2
}
