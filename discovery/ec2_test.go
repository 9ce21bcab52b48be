package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/gantry-dev/gantry/discovery/ec2stub"
	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/inventory"
)

// TestMain keeps every test away from the real AWS: no AWS_* variable of the
// caller's shell, empty shared config files, no instance metadata service.
// Each test points the SDK at a stub on 127.0.0.1.
func TestMain(m *testing.M) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			os.Unsetenv(k)
		}
	}
	dir, err := os.MkdirTemp("", "gantry-ec2-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, name := range []string{"config", "credentials"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testRegion = "us-east-1"

func fleet() []ec2stub.Instance {
	return []ec2stub.Instance{
		{ID: "i-01", Zone: "us-east-1a", PrivateIP: "10.0.0.1", PublicIP: "54.0.0.1", PrivateDNS: "ip-10-0-0-1.ec2.internal",
			Tags: map[string]string{"Name": "web-1", "env": "staging", "role": "web", "gantry:services": " api, worker,, api "}},
		{ID: "i-02", Zone: "us-east-1b", PrivateIP: "10.0.0.2", PrivateDNS: "ip-10-0-0-2.ec2.internal",
			Tags: map[string]string{"Name": "web-2", "env": "staging", "role": "web", "gantry:services": "api"}},
		{ID: "i-03", Zone: "us-east-1c", PrivateIP: "10.0.0.3",
			Tags: map[string]string{"env": "staging", "role": "worker"}},
		{ID: "i-04", State: "stopped", Zone: "us-east-1a",
			Tags: map[string]string{"Name": "web-3", "env": "staging", "role": "web", "gantry:services": "api"}},
		{ID: "i-05", Zone: "us-east-1a", PrivateIP: "10.1.0.5",
			Tags: map[string]string{"Name": "web-9", "env": "prod", "role": "web", "gantry:services": "api"}},
		{ID: "i-06", Zone: "us-east-1a", PrivateIP: "10.0.0.6",
			Tags: map[string]string{"Name": "dup", "env": "staging", "role": "batch"}},
		{ID: "i-07", Zone: "us-east-1b", PrivateIP: "10.0.0.7",
			Tags: map[string]string{"Name": "dup", "env": "staging", "role": "batch"}},
	}
}

// startStub serves instances on 127.0.0.1 for the length of the test.
func startStub(t *testing.T, instances []ec2stub.Instance) (*ec2stub.Server, *httptest.Server) {
	t.Helper()
	stub := ec2stub.New(instances)
	ts := stub.Start()
	t.Cleanup(ts.Close)
	if !strings.HasPrefix(ts.URL, "http://127.0.0.1:") {
		t.Fatalf("stub at %s, want 127.0.0.1", ts.URL)
	}
	return stub, ts
}

// stubClient is the real SDK client, pointed at the stub, with static
// credentials and the standard retryer with its backoff capped at 10ms.
func stubClient(ts *httptest.Server) *ec2.Client {
	cfg := aws.Config{
		Region:       testRegion,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSTUB", "stub-secret", ""),
		BaseEndpoint: aws.String(ts.URL),
		HTTPClient:   ts.Client(),
		Retryer: func() aws.Retryer {
			return retry.AddWithMaxBackoffDelay(retry.NewStandard(), 10*time.Millisecond)
		},
	}
	return ec2.NewFromConfig(cfg)
}

func hostNames(hosts []inventory.Host) []string {
	out := []string{}
	for _, h := range hosts {
		out = append(out, h.Name)
	}
	return out
}

func byName(t *testing.T, hosts []inventory.Host, name string) inventory.Host {
	t.Helper()
	for _, h := range hosts {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("no host %q in %v", name, hostNames(hosts))
	return inventory.Host{}
}

func TestEC2TagFilters(t *testing.T) {
	stub, ts := startStub(t, fleet())
	src := EC2{Region: testRegion, Filters: map[string]string{"env": "staging"}, Client: stubClient(ts)}

	hosts, warnings, err := partsOf(src.Discover(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %q", warnings)
	}
	// Sorted by name; the stopped web-3 is not there; the duplicated Name
	// gets the instance ids; the unnamed one is its id.
	want := []string{"dup-i-06", "dup-i-07", "i-03", "web-1", "web-2"}
	if got := hostNames(hosts); !reflect.DeepEqual(got, want) {
		t.Fatalf("hosts = %q, want %q", got, want)
	}
	web1 := byName(t, hosts, "web-1")
	wantWeb1 := inventory.Host{
		Name: "web-1", Address: "10.0.0.1", Zone: "us-east-1a", SSHAddr: "10.0.0.1:22",
		DockerSocket: "/var/run/docker.sock", Services: []string{"api", "worker"},
	}
	if !reflect.DeepEqual(web1, wantWeb1) {
		t.Errorf("web-1 = %+v, want %+v", web1, wantWeb1)
	}
	if h := byName(t, hosts, "i-03"); h.Services != nil || h.Zone != "us-east-1c" {
		t.Errorf("i-03 = %+v, want no services, zone us-east-1c", h)
	}

	// The request: the tag filter, then running only.
	reqs := stub.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	form := reqs[0]
	for k, v := range map[string]string{
		"Action": "DescribeInstances", "Version": "2016-11-15",
		"Filter.1.Name": "tag:env", "Filter.1.Value.1": "staging",
		"Filter.2.Name": "instance-state-name", "Filter.2.Value.1": "running",
	} {
		if form.Get(k) != v {
			t.Errorf("request %s = %q, want %q (form %v)", k, form.Get(k), v, form)
		}
	}

	// Two filters are ANDed.
	src.Filters = map[string]string{"env": "staging", "role": "web"}
	hosts, err = hostsOf(src.Discover(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hostNames(hosts), []string{"web-1", "web-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("env=staging,role=web: hosts = %q, want %q", got, want)
	}

	src.Filters = map[string]string{"env": "prod"}
	hosts, err = hostsOf(src.Discover(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hostNames(hosts), []string{"web-9"}; !reflect.DeepEqual(got, want) {
		t.Errorf("env=prod: hosts = %q, want %q", got, want)
	}

	src.Filters = map[string]string{"env": "nowhere"}
	hosts, err = hostsOf(src.Discover(context.Background()))
	if err != nil || len(hosts) != 0 {
		t.Errorf("env=nowhere: hosts = %q, err = %v; want none, no error", hostNames(hosts), err)
	}
}

func TestEC2Settings(t *testing.T) {
	_, ts := startStub(t, fleet())
	src := EC2{
		Region: testRegion, Filters: map[string]string{"role": "web"}, Client: stubClient(ts),
		ServicesTag: "env", SSHPort: 2222, DockerSocket: "/run/docker.sock",
	}
	hosts, err := hostsOf(src.Discover(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	h := byName(t, hosts, "web-9")
	want := inventory.Host{Name: "web-9", Address: "10.1.0.5", Zone: "us-east-1a", SSHAddr: "10.1.0.5:2222",
		DockerSocket: "/run/docker.sock", Services: []string{"prod"}}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("web-9 = %+v, want %+v", h, want)
	}
}

func TestEC2Pagination(t *testing.T) {
	var many []ec2stub.Instance
	for i := 1; i <= 25; i++ {
		many = append(many, ec2stub.Instance{
			ID: fmt.Sprintf("i-%04d", i), PrivateIP: fmt.Sprintf("10.2.0.%d", i), Zone: "us-east-1a",
			Tags: map[string]string{"Name": fmt.Sprintf("node-%02d", i), "env": "big"},
		})
	}
	// One stopped and one of another env in the middle of the pages.
	many = append(many[:10], append([]ec2stub.Instance{
		{ID: "i-stopped", State: "stopped", PrivateIP: "10.2.1.1", Tags: map[string]string{"env": "big"}},
		{ID: "i-other", PrivateIP: "10.2.1.2", Tags: map[string]string{"env": "small"}},
	}, many[10:]...)...)
	stub, ts := startStub(t, many)

	t.Run("MaxResults", func(t *testing.T) {
		stub.Reset()
		src := EC2{Region: testRegion, Filters: map[string]string{"env": "big"}, PageSize: 5, Client: stubClient(ts)}
		hosts, err := hostsOf(src.Discover(context.Background()))
		if err != nil {
			t.Fatal(err)
		}
		if len(hosts) != 25 || hosts[0].Name != "node-01" || hosts[24].Name != "node-25" {
			t.Fatalf("hosts = %q, want node-01..node-25", hostNames(hosts))
		}
		reqs := stub.Requests()
		if len(reqs) != 5 {
			t.Fatalf("%d calls, want 5 pages of 5", len(reqs))
		}
		for i, r := range reqs {
			if r.Get("MaxResults") != "5" {
				t.Errorf("call %d MaxResults = %q, want 5", i, r.Get("MaxResults"))
			}
			if (i == 0) != (r.Get("NextToken") == "") {
				t.Errorf("call %d NextToken = %q", i, r.Get("NextToken"))
			}
		}
	})

	t.Run("ServerPages", func(t *testing.T) {
		stub.Reset()
		stub.SetPageSize(4)
		defer stub.SetPageSize(0)
		src := EC2{Region: testRegion, Filters: map[string]string{"env": "big"}, Client: stubClient(ts)}
		hosts, err := hostsOf(src.Discover(context.Background()))
		if err != nil {
			t.Fatal(err)
		}
		if len(hosts) != 25 {
			t.Fatalf("%d hosts, want 25", len(hosts))
		}
		if n := stub.Calls(); n != 7 {
			t.Errorf("%d calls, want 7 pages of at most 4", n)
		}
		if got := stub.Requests()[0].Get("MaxResults"); got != "" {
			t.Errorf("MaxResults = %q, want none when PageSize is 0", got)
		}
	})

	t.Run("BadPageSize", func(t *testing.T) {
		_, err := hostsOf(EC2{Region: testRegion, PageSize: 3, Client: stubClient(ts)}.Discover(context.Background()))
		if err == nil || !strings.Contains(err.Error(), "page size 3") {
			t.Errorf("err = %v, want page size error", err)
		}
	})
}

func TestEC2AddressFrom(t *testing.T) {
	_, ts := startStub(t, fleet())
	base := EC2{Region: testRegion, Filters: map[string]string{"role": "web", "env": "staging"}, Client: stubClient(ts)}

	src := base
	src.AddressFrom = AddressPublicIP
	hosts, warnings, err := partsOf(src.Discover(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hostNames(hosts), []string{"web-1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("public-ip: hosts = %q, want %q", got, want)
	}
	if h := hosts[0]; h.Address != "54.0.0.1" || h.SSHAddr != "54.0.0.1:22" {
		t.Errorf("public-ip: web-1 = %+v", h)
	}
	if want := []string{"instance i-02 (web-2) has no public IP address; skipped"}; !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings = %q, want %q", warnings, want)
	}
	// Hosts leaves the skipped ones out without failing.
	if hosts, err := hostsOf(src.Discover(context.Background())); err != nil || len(hosts) != 1 {
		t.Errorf("Hosts = %q, %v", hostNames(hosts), err)
	}

	src = base
	src.AddressFrom = AddressPrivateDNS
	src.Filters = map[string]string{"env": "staging"}
	hosts, warnings, err = partsOf(src.Discover(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hostNames(hosts), []string{"web-1", "web-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("private-dns: hosts = %q, want %q", got, want)
	}
	if hosts[1].Address != "ip-10-0-0-2.ec2.internal" {
		t.Errorf("private-dns: web-2 address = %q", hosts[1].Address)
	}
	wantW := []string{
		"instance i-03 has no private DNS address; skipped",
		"instance i-06 (dup) has no private DNS address; skipped",
		"instance i-07 (dup) has no private DNS address; skipped",
	}
	if !reflect.DeepEqual(warnings, wantW) {
		t.Errorf("private-dns: warnings = %q, want %q", warnings, wantW)
	}

	src = base
	src.AddressFrom = AddressPrivateIP
	hosts, err = hostsOf(src.Discover(context.Background()))
	if err != nil || len(hosts) != 2 || hosts[0].Address != "10.0.0.1" {
		t.Errorf("private-ip: hosts = %+v, err = %v", hosts, err)
	}

	src = base
	src.AddressFrom = "elastic-ip"
	if _, err := hostsOf(src.Discover(context.Background())); err == nil || !strings.Contains(err.Error(), `address_from "elastic-ip"`) {
		t.Errorf("elastic-ip: err = %v", err)
	}
}

func assertOneLine(t *testing.T, err error) {
	t.Helper()
	if strings.ContainsAny(err.Error(), "\n\r") {
		t.Errorf("error is not one line: %q", err)
	}
}

func TestEC2ThrottledThenOK(t *testing.T) {
	stub, ts := startStub(t, fleet())
	stub.Throttle(2)
	start := time.Now()
	hosts, err := hostsOf(EC2{Region: testRegion, Filters: map[string]string{"env": "prod"}, Client: stubClient(ts)}.Discover(context.Background()))
	if err != nil {
		t.Fatalf("err = %v, want the retryer to get through", err)
	}
	if len(hosts) != 1 {
		t.Errorf("hosts = %q", hostNames(hosts))
	}
	if n := stub.Calls(); n != 3 {
		t.Errorf("%d calls, want 2 throttled + 1", n)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v; the retryer's backoff should be capped at 10ms", d)
	}
}

func TestEC2ThrottledForever(t *testing.T) {
	stub, ts := startStub(t, fleet())
	stub.Throttle(-1)
	_, err := hostsOf(EC2{Region: testRegion, Client: stubClient(ts)}.Discover(context.Background()))
	t.Logf("error: %v", err)
	if !errors.Is(err, ErrThrottled) {
		t.Fatalf("err = %v, want ErrThrottled", err)
	}
	want := "EC2 API throttled in us-east-1 (RequestLimitExceeded after 3 attempts): the account's EC2 request rate is used up; wait a minute and try again"
	if err.Error() != want {
		t.Errorf("err = %q\nwant  %q", err, want)
	}
	assertOneLine(t, err)
	if n := stub.Calls(); n != 3 {
		t.Errorf("%d calls, want the standard retryer's 3 attempts", n)
	}
}

func TestEC2AccessDenied(t *testing.T) {
	stub, ts := startStub(t, fleet())
	stub.DenyAccess(true)
	_, err := hostsOf(EC2{Region: testRegion, Client: stubClient(ts)}.Discover(context.Background()))
	t.Logf("error: %v", err)
	if !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("err = %v, want ErrAccessDenied", err)
	}
	if !strings.HasPrefix(err.Error(), "access denied to ec2:DescribeInstances in us-east-1: grant it to the IAM identity gantry runs as") ||
		!strings.Contains(err.Error(), "UnauthorizedOperation") {
		t.Errorf("err = %q", err)
	}
	assertOneLine(t, err)
	if n := stub.Calls(); n != 1 {
		t.Errorf("%d calls, want 1: access denied is not retried", n)
	}
}

func TestEC2OtherErrorNamesRegion(t *testing.T) {
	calls := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>The filter 'tag:env' is
invalid</Message></Error></Errors><RequestID>req-1</RequestID></Response>`)
	}))
	defer ts.Close()
	_, err := hostsOf(EC2{Region: testRegion, Filters: map[string]string{"env": "x"}, Client: stubClient(ts)}.Discover(context.Background()))
	if err == nil {
		t.Fatal("no error")
	}
	t.Logf("error: %v", err)
	if !strings.HasPrefix(err.Error(), "ec2 discovery in us-east-1: ") || !strings.Contains(err.Error(), "InvalidParameterValue") {
		t.Errorf("err = %q", err)
	}
	if errors.Is(err, ErrThrottled) || errors.Is(err, ErrAccessDenied) || errors.Is(err, ErrNoCredentials) {
		t.Errorf("err %q classified as a known kind", err)
	}
	assertOneLine(t, err)
	if calls != 1 {
		t.Errorf("%d calls, want 1", calls)
	}

	// An empty tag name is caught before any call.
	_, err = hostsOf(EC2{Region: testRegion, Filters: map[string]string{" ": "x"}, Client: stubClient(ts)}.Discover(context.Background()))
	if err == nil || !strings.Contains(err.Error(), "empty tag name") || calls != 1 {
		t.Errorf("empty tag name: err = %v, calls = %d", err, calls)
	}
}

func TestEC2CanceledContext(t *testing.T) {
	_, ts := startStub(t, fleet())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := hostsOf(EC2{Region: testRegion, Client: stubClient(ts)}.Discover(ctx))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// The default chain, with no client given: credentials from the environment,
// endpoint from AWS_ENDPOINT_URL_EC2 or AWS_ENDPOINT_URL.
func TestEC2DefaultChainEndpointFromEnv(t *testing.T) {
	for _, envVar := range []string{"AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"} {
		t.Run(envVar, func(t *testing.T) {
			stub, ts := startStub(t, fleet())
			t.Setenv(envVar, ts.URL)
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
			hosts, err := hostsOf(EC2{Region: testRegion, Filters: map[string]string{"env": "prod"}}.Discover(context.Background()))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := hostNames(hosts), []string{"web-9"}; !reflect.DeepEqual(got, want) {
				t.Errorf("hosts = %q, want %q", got, want)
			}
			if n := stub.Calls(); n != 1 {
				t.Errorf("stub got %d calls, want 1", n)
			}
		})
	}
}

// Profile picks credentials and region from the shared files.
func TestEC2DefaultChainProfile(t *testing.T) {
	stub, ts := startStub(t, fleet())
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config")
	credFile := filepath.Join(dir, "credentials")
	os.WriteFile(cfgFile, []byte("[profile lab]\nregion = eu-west-1\n"), 0o600)
	os.WriteFile(credFile, []byte("[lab]\naws_access_key_id = AKIDLAB\naws_secret_access_key = lab-secret\n"), 0o600)
	t.Setenv("AWS_CONFIG_FILE", cfgFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credFile)
	t.Setenv("AWS_ENDPOINT_URL_EC2", ts.URL)

	hosts, err := hostsOf(EC2{Profile: "lab", Filters: map[string]string{"env": "prod"}}.Discover(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 1 || stub.Calls() != 1 {
		t.Errorf("hosts = %q, calls = %d", hostNames(hosts), stub.Calls())
	}

	_, err = hostsOf(EC2{Profile: "nope", Region: testRegion}.Discover(context.Background()))
	if err == nil || !strings.Contains(err.Error(), `AWS profile "nope" is not in the shared config or credentials file`) {
		t.Errorf("missing profile: err = %v", err)
	}
	if stub.Calls() != 1 {
		t.Errorf("missing profile: stub called")
	}
}

func TestEC2NoRegion(t *testing.T) {
	_, ts := startStub(t, fleet())
	t.Setenv("AWS_ENDPOINT_URL_EC2", ts.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	_, err := hostsOf(EC2{}.Discover(context.Background()))
	if err == nil || !strings.Contains(err.Error(), "no AWS region") {
		t.Errorf("err = %v, want no AWS region", err)
	}
}

func TestEC2NoCredentials(t *testing.T) {
	stub, ts := startStub(t, fleet())
	// TestMain left empty shared files, no key variables and no IMDS.
	t.Setenv("AWS_ENDPOINT_URL_EC2", ts.URL)
	start := time.Now()
	_, err := hostsOf(EC2{Region: testRegion}.Discover(context.Background()))
	t.Logf("error: %v", err)
	if !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("err = %v, want ErrNoCredentials", err)
	}
	want := "no AWS credentials found: set AWS_PROFILE / AWS_ACCESS_KEY_ID or run on an instance with a role"
	if err.Error() != want {
		t.Errorf("err = %q\nwant  %q", err, want)
	}
	if n := stub.Calls(); n != 0 {
		t.Errorf("stub got %d calls, want none", n)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

// A client whose credentials fail at signing time (an injected client, or
// credentials that expire between calls) gets the same message.
func TestEC2NoCredentialsAtCall(t *testing.T) {
	stub, ts := startStub(t, fleet())
	client := ec2.NewFromConfig(aws.Config{
		Region: testRegion,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("no EC2 IMDS role found")
		}),
		BaseEndpoint: aws.String(ts.URL),
		HTTPClient:   ts.Client(),
	})
	_, err := hostsOf(EC2{Region: testRegion, Client: client}.Discover(context.Background()))
	t.Logf("error: %v", err)
	if !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("err = %v, want ErrNoCredentials", err)
	}
	if stub.Calls() != 0 {
		t.Errorf("stub got %d calls, want none", stub.Calls())
	}
}

// Whatever a server answers, instances that are not running are dropped.
func TestEC2DropsNotRunningEvenIfServed(t *testing.T) {
	stub := ec2stub.New(fleet())
	// A server that ignores the state filter.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		for k := range r.PostForm {
			if strings.HasPrefix(k, "Filter.") {
				r.PostForm.Del(k)
			}
		}
		r.Body = http.NoBody
		stub.ServeHTTP(w, r)
	}))
	defer ts.Close()
	hosts, err := hostsOf(EC2{Region: testRegion, Client: stubClient(ts)}.Discover(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if h.Name == "web-3" {
			t.Errorf("stopped web-3 kept")
		}
	}
	if len(hosts) != 6 {
		t.Errorf("hosts = %q, want the 6 running", hostNames(hosts))
	}
}

var _ Source = EC2{}

var _ Source = Static{}

// hostsOf is a discovery's hosts and error, its warnings left aside.
func hostsOf(r Result, err error) ([]inventory.Host, error) { return r.Hosts, err }

// partsOf is a discovery's hosts, warnings and error.
func partsOf(r Result, err error) ([]inventory.Host, []string, error) {
	return r.Hosts, r.Warnings, err
}

// Names that still collide once duplicate Name tags got their instance
// ids (a Name tag equal to another instance's id, or to a name made with
// an id) are made unique too, with a warning naming the instance: hosts
// are looked up by name.
func TestEC2HostNamesAreUnique(t *testing.T) {
	for _, tc := range []struct {
		name  string
		names []string // as named before uniqueNames
		ids   []string
	}{
		{"tag equal to an untagged instance's id", []string{"i-0aaa", "i-0aaa"}, []string{"i-0aaa", "i-0bbb"}},
		{"tag equal to a name made with an id", []string{"web-i-0ccc", "web-i-0bbb", "web-i-0ccc"}, []string{"i-0ccc", "i-0bbb", "i-0ddd"}},
		{"too long once the id is added", []string{strings.Repeat("w", 125), strings.Repeat("w", 125)}, []string{"i-0aaa", "i-0bbb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hosts := make([]inventory.Host, len(tc.names))
			for i, n := range tc.names {
				hosts[i].Name = n
			}
			warnings := uniqueNames(hosts, tc.ids)
			seen := map[string]bool{}
			for _, h := range hosts {
				if seen[h.Name] {
					t.Errorf("two hosts named %s: %v", h.Name, hosts)
				}
				seen[h.Name] = true
				if !names.Safe(h.Name) {
					t.Errorf("host name %q is not one gantry writes into files and commands", h.Name)
				}
			}
			if len(warnings) == 0 {
				t.Error("no warning names the instances renamed")
			}
		})
	}
}
