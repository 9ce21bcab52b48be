// Command ec2stub serves the EC2 DescribeInstances stand-in of package
// ec2stub on a loopback address, with instances read from a JSON file: a list
// of objects with the fields id, state, zone, private_ip, public_ip,
// private_dns, public_dns and tags (an object of tag key to value).
//
//	ec2stub -addr 127.0.0.1:4566 -instances fleet.json
//
// Point gantry (or any AWS SDK) at it with AWS_ENDPOINT_URL_EC2=http://ADDR
// and any static credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY); the
// stub does not check signatures. It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/gantry-dev/gantry/discovery/ec2stub"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	file := flag.String("instances", "", "JSON file with the instances to serve (required)")
	pageSize := flag.Int("page-size", 0, "page size when a request has no MaxResults (0: one page)")
	flag.Parse()
	if err := run(*addr, *file, *pageSize); err != nil {
		fmt.Fprintln(os.Stderr, "ec2stub:", strings.TrimPrefix(err.Error(), "ec2stub: "))
		os.Exit(1)
	}
}

func run(addr, file string, pageSize int) error {
	if file == "" {
		return fmt.Errorf("-instances FILE is required")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var instances []ec2stub.Instance
	if err := json.Unmarshal(data, &instances); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	srv := ec2stub.New(instances)
	srv.SetPageSize(pageSize)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bound, done, err := srv.Listen(ctx, addr)
	if err != nil {
		return err
	}
	// The endpoint line is the one a script waits for.
	fmt.Printf("ec2stub: serving %d instances at http://%s\n", len(instances), bound)
	return <-done
}
