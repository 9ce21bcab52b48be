package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/discovery/ec2stub"
)

// TestEC2DiscoveryDeploy deploys the lab found through the EC2 API: the
// real AWS SDK in gantry asks a stand-in DescribeInstances endpoint on
// loopback (AWS_ENDPOINT_URL_EC2) for the instances tagged env=lab; a
// stopped instance and another environment's instance are ignored. The
// deploy runs under load with zero failed requests.
func TestEC2DiscoveryDeploy(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	l.onBaseline(t)
	var instances []ec2stub.Instance
	for i, h := range l.hosts {
		instances = append(instances, ec2stub.Instance{
			ID: fmt.Sprintf("i-%017d", i+1), Zone: "lab-" + labZone(i+1), PrivateIP: h.Address,
			Tags: map[string]string{"Name": h.Name, "env": "lab", "gantry:services": "www", "gantry:docker-socket": h.Socket},
		})
	}
	instances = append(instances,
		ec2stub.Instance{ID: "i-stopped", State: "stopped", PrivateIP: "127.0.2.250", Tags: map[string]string{"Name": "old", "env": "lab", "gantry:services": "www"}},
		ec2stub.Instance{ID: "i-other", PrivateIP: "127.0.2.251", Tags: map[string]string{"Name": "staging-1", "env": "staging", "gantry:services": "www"}},
	)
	stub := ec2stub.New(instances)
	stub.SetPageSize(2) // several pages
	srv := stub.Start()
	t.Cleanup(srv.Close)

	// The lab config with its host list replaced by EC2 discovery.
	data, err := os.ReadFile(l.config)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start, end := strings.Index(text, "    hosts:\n"), strings.Index(text, "    load_balancers:\n")
	if start < 0 || end < start {
		t.Fatalf("%s: no hosts block to replace", l.config)
	}
	text = text[:start] + "    discovery:\n      ec2:\n        region: us-east-1\n        tags: {env: lab}\n" + text[end:]
	cfg := filepath.Join(t.TempDir(), "gantry-ec2.yml")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) result {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, l.gantry, append([]string{"--config", cfg}, args...)...)
		cmd.Env = append(os.Environ(),
			"AWS_ENDPOINT_URL_EC2="+srv.URL, "AWS_ACCESS_KEY_ID=AKIDLAB", "AWS_SECRET_ACCESS_KEY=lab-secret",
			"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		r := result{stdout: stdout.String(), stderr: stderr.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		t.Logf("gantry (ec2) %s -> exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		return r
	}

	v := l.publish(t)
	stopLoad := startLoad()
	r := run("deploy", v, "--env", "lab")
	assertNoFailedRequests(t, stopLoad())
	if r.code != 0 {
		t.Fatalf("deploy with EC2 discovery exited %d", r.code)
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("%d host(s)", len(l.hosts))) || strings.Contains(r.stdout, "staging-1") || strings.Contains(r.stdout, " old ") {
		t.Errorf("the plan should hold exactly the %d lab hosts:\n%s", len(l.hosts), r.stdout)
	}
	l.assertAllOn(t, sha(v))
	if stub.Calls() < 2 {
		t.Errorf("the EC2 endpoint saw %d calls; want several pages", stub.Calls())
	}

	// The EC2 API refusing access is one clear line, and nothing changes.
	stub.DenyAccess(true)
	r = run("deploy", v, "--env", "lab")
	if r.code != 3 || !strings.Contains(r.stderr, "access denied to ec2:DescribeInstances") {
		t.Errorf("access denied: exit %d, stderr %q; want 3 and a clear line", r.code, r.stderr)
	}
}
