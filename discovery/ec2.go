package discovery

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/inventory"
)

// Defaults of the EC2 source.
const (
	DefaultServicesTag = "gantry:services"
	AddressPrivateIP   = "private-ip"
	AddressPublicIP    = "public-ip"
	AddressPrivateDNS  = "private-dns"
)

// Errors the EC2 source returns, for errors.Is. The error returned says more,
// on one line, including what to do about it.
var (
	ErrNoCredentials = errors.New("no AWS credentials found")
	ErrAccessDenied  = errors.New("access denied")
	ErrThrottled     = errors.New("EC2 API throttled")
)

// DockerSocketTag, on an instance, overrides the Docker socket path for
// that host (hosts sharing one machine, as in the lab, each have their own).
const DockerSocketTag = "gantry:docker-socket"

// EC2 finds the hosts of an environment among the running EC2 instances whose
// tags match Filters.
//
// Credentials, region and endpoint come from the SDK's default chain
// (environment, shared config and credentials files, SSO, the instance
// role), narrowed by Region and Profile. The SDK's endpoint overrides
// (AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL, endpoint_url in the profile) are
// honoured.
type EC2 struct {
	// Region overrides the region of the default chain (AWS_REGION, profile).
	Region string
	// Profile selects a profile of the shared config files; empty means
	// AWS_PROFILE or "default".
	Profile string
	// Filters are tag filters: {"env": "staging"} keeps instances whose tag
	// env is staging. Values may use EC2's * and ? wildcards. Only running
	// instances are ever kept.
	Filters map[string]string
	// ServicesTag names the tag that lists, comma-separated, the services an
	// instance runs. Empty means DefaultServicesTag.
	ServicesTag string
	// AddressFrom picks the host address: AddressPrivateIP (the default),
	// AddressPublicIP or AddressPrivateDNS. Instances without it are skipped
	// with a warning.
	AddressFrom string
	// SSHPort is the port of sshd on every host; 0 means config.DefaultSSHPort.
	SSHPort int
	// DockerSocket is the Docker socket path on every host; empty means
	// config.DefaultDockerSocket. A host's DockerSocketTag tag overrides it.
	DockerSocket string
	// PageSize is MaxResults per DescribeInstances call (5 to 1000); 0 lets
	// EC2 decide. Every page is read either way.
	PageSize int32
	// Client, when set, is used instead of a client built from the default
	// chain (tests inject one). Region is then only used in messages.
	Client ec2.DescribeInstancesAPIClient
}

// Discover lists the running instances that match the filters, following
// every page, and turns them into hosts in natural order of name (host2
// before host10). The name is the Name tag, else the instance id; when
// several matching instances share a Name tag, each gets its instance id
// appended: "web-1-i-0abc". The result's Warnings say,
// one line each, which instances were skipped and why: among them, those
// whose Name, services or DockerSocketTag tag, address or zone breaks the
// rules of package names (tags are untrusted input).
func (e EC2) Discover(ctx context.Context) (Result, error) {
	addressFrom := e.AddressFrom
	if addressFrom == "" {
		addressFrom = AddressPrivateIP
	}
	switch addressFrom {
	case AddressPrivateIP, AddressPublicIP, AddressPrivateDNS:
	default:
		return Result{}, fmt.Errorf("ec2 discovery: address_from %q is not one of %s, %s, %s",
			e.AddressFrom, AddressPrivateIP, AddressPublicIP, AddressPrivateDNS)
	}
	if e.PageSize != 0 && (e.PageSize < 5 || e.PageSize > 1000) {
		return Result{}, fmt.Errorf("ec2 discovery: page size %d is outside the 5 to 1000 EC2 allows", e.PageSize)
	}

	for k := range e.Filters {
		if strings.TrimSpace(k) == "" {
			return Result{}, errors.New("ec2 discovery: a tag filter has an empty tag name")
		}
	}

	client, region, err := e.client(ctx)
	if err != nil {
		return Result{}, err
	}
	instances, err := describeAll(ctx, client, e.input(), e.PageSize)
	if err != nil {
		return Result{}, classify(err, region, e.Profile)
	}

	servicesTag := e.ServicesTag
	if servicesTag == "" {
		servicesTag = DefaultServicesTag
	}
	sshPort := e.SSHPort
	if sshPort == 0 {
		sshPort = config.DefaultSSHPort
	}
	socket := e.DockerSocket
	if socket == "" {
		socket = config.DefaultDockerSocket
	}

	var hosts []inventory.Host
	var ids []string // by host, its instance id
	var warnings []string
	tagNames := make([]string, len(instances))
	count := map[string]int{}
	for i, in := range instances {
		tagNames[i] = strings.TrimSpace(tagValue(in.Tags, "Name"))
		count[tagNames[i]]++
	}
	for i, in := range instances {
		id := aws.ToString(in.InstanceId)
		if err := names.Check(id); err != nil {
			warnings = append(warnings, fmt.Sprintf("an instance with id %s: %v; skipped", shortQuote(id), err))
			continue
		}
		// Tags are untrusted: anyone allowed to tag an instance would
		// otherwise choose what goes into upstream files, commands and
		// paths. An instance with a bad tag is skipped, not repaired.
		if key, err := badTag(in, servicesTag); err != nil {
			warnings = append(warnings, fmt.Sprintf("instance %s: tag %s %s: %v; skipped", id, key, shortQuote(tagValue(in.Tags, key)), err))
			continue
		}
		name := tagNames[i]
		switch {
		case name == "":
			name = id
		case count[name] > 1:
			name = name + "-" + id
		}
		addr := address(in, addressFrom)
		if addr == "" {
			w := fmt.Sprintf("instance %s has no %s address; skipped", id, addressLabel(addressFrom))
			if name != id {
				w = fmt.Sprintf("instance %s (%s) has no %s address; skipped", id, tagNames[i], addressLabel(addressFrom))
			}
			warnings = append(warnings, w)
			continue
		}
		if err := names.CheckAddr(addr); err != nil {
			warnings = append(warnings, fmt.Sprintf("instance %s: %s %s: %v; skipped", id, addressLabel(addressFrom), shortQuote(addr), err))
			continue
		}
		var zone string
		if in.Placement != nil {
			zone = aws.ToString(in.Placement.AvailabilityZone)
		}
		if zone != "" {
			if err := names.Check(zone); err != nil {
				warnings = append(warnings, fmt.Sprintf("instance %s: availability zone %s: %v; skipped", id, shortQuote(zone), err))
				continue
			}
		}
		hostSocket := socket
		if t := strings.TrimSpace(tagValue(in.Tags, DockerSocketTag)); t != "" {
			hostSocket = t
		}
		hosts = append(hosts, inventory.Host{
			Name:         name,
			Address:      addr,
			Zone:         zone,
			SSHAddr:      config.HostPort(addr, sshPort),
			DockerSocket: hostSocket,
			Services:     splitServices(tagValue(in.Tags, servicesTag)),
		})
		ids = append(ids, id)
	}
	warnings = append(warnings, uniqueNames(hosts, ids)...)
	sort.Slice(hosts, func(i, j int) bool {
		if hosts[i].Name != hosts[j].Name {
			return names.Less(hosts[i].Name, hosts[j].Name)
		}
		return hosts[i].Address < hosts[j].Address
	})
	sort.Strings(warnings)
	return Result{Hosts: hosts, Warnings: warnings}, nil
}

// uniqueNames renames the hosts whose names still collide (a Name tag
// equal to another instance's id, or to a name made unique with an id):
// each, but one named after its own id, becomes its name and its instance
// id (ids[i]), which no other instance has. Hosts are looked up by name:
// two of one name would be one machine deployed twice and one never.
func uniqueNames(hosts []inventory.Host, ids []string) (warnings []string) {
	for range 3 { // a name made of a name and an id may collide again, with a tag made so
		count := map[string]int{}
		for _, h := range hosts {
			count[h.Name]++
		}
		renamed := false
		for i := range hosts {
			name := hosts[i].Name
			if count[name] < 2 || name == ids[i] {
				continue
			}
			hosts[i].Name, renamed = name+"-"+ids[i], true
			if !names.Safe(hosts[i].Name) {
				hosts[i].Name = ids[i] // too long: the id alone, which no one else has now
			}
			warnings = append(warnings, fmt.Sprintf("instance %s: name %s is another instance's too; named %s (give the instances Name tags of their own)", ids[i], name, hosts[i].Name))
		}
		if !renamed {
			break
		}
	}
	return warnings
}

// input is the DescribeInstances request: the tag filters, in key order,
// and the running state.
func (e EC2) input() *ec2.DescribeInstancesInput {
	keys := make([]string, 0, len(e.Filters))
	for k := range e.Filters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	filters := make([]types.Filter, 0, len(keys)+1)
	for _, k := range keys {
		filters = append(filters, types.Filter{Name: aws.String("tag:" + k), Values: []string{e.Filters[k]}})
	}
	filters = append(filters, types.Filter{Name: aws.String("instance-state-name"), Values: []string{"running"}})
	return &ec2.DescribeInstancesInput{Filters: filters}
}

// client returns the client to use and the region, for messages.
func (e EC2) client(ctx context.Context) (ec2.DescribeInstancesAPIClient, string, error) {
	if e.Client != nil {
		return e.Client, e.Region, nil
	}
	var opts []func(*awsconfig.LoadOptions) error
	if e.Region != "" {
		opts = append(opts, awsconfig.WithRegion(e.Region))
	}
	if e.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(e.Profile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		var missing awsconfig.SharedConfigProfileNotExistError
		if errors.As(err, &missing) {
			return nil, "", fmt.Errorf("ec2 discovery: AWS profile %q is not in the shared config or credentials file: fix profile in gantry.yml or AWS_PROFILE", missing.Profile)
		}
		return nil, "", fmt.Errorf("ec2 discovery: loading AWS config: %s", oneLine(err))
	}
	if cfg.Region == "" {
		return nil, "", errors.New("ec2 discovery: no AWS region: set region for the environment in gantry.yml, or AWS_REGION")
	}
	// Fail on credentials here, before any request, so that the error says
	// so plainly instead of through the operation's wrapping.
	if cfg.Credentials == nil {
		return nil, "", noCredentials(e.Profile, nil)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, "", fmt.Errorf("ec2 discovery in %s: %w", cfg.Region, ctx.Err())
		}
		var api smithy.APIError
		if errors.As(err, &api) {
			// An STS or SSO call of the chain answered: credentials are
			// configured, but unusable.
			return nil, "", fmt.Errorf("ec2 discovery: could not get AWS credentials%s: %s", profileLabel(e.Profile), oneLine(err))
		}
		return nil, "", noCredentials(e.Profile, err)
	}
	return ec2.NewFromConfig(cfg), cfg.Region, nil
}

func describeAll(ctx context.Context, client ec2.DescribeInstancesAPIClient, in *ec2.DescribeInstancesInput, pageSize int32) ([]types.Instance, error) {
	p := ec2.NewDescribeInstancesPaginator(client, in, func(o *ec2.DescribeInstancesPaginatorOptions) {
		o.Limit = pageSize
		o.StopOnDuplicateToken = true
	})
	var out []types.Instance
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				// The filter asks for running ones; a stand-in or a later
				// change of filters must not let others through.
				if inst.State != nil && inst.State.Name != types.InstanceStateNameRunning {
					continue
				}
				out = append(out, inst)
			}
		}
	}
	return out, nil
}

// ec2Error is a classified error: one line of text, and both the kind
// (ErrAccessDenied, ...) and the SDK's error underneath for errors.Is/As.
type ec2Error struct {
	msg   string
	kind  error
	cause error
}

func (e *ec2Error) Error() string { return e.msg }

func (e *ec2Error) Unwrap() []error {
	var out []error
	if e.kind != nil {
		out = append(out, e.kind)
	}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

func noCredentials(profile string, cause error) error {
	return &ec2Error{
		msg: fmt.Sprintf("no AWS credentials found%s: set AWS_PROFILE / AWS_ACCESS_KEY_ID or run on an instance with a role",
			profileLabel(profile)),
		kind:  ErrNoCredentials,
		cause: cause,
	}
}

// throttleCodes are the error codes the SDK's standard retryer treats as
// throttling.
var throttleCodes = retry.ThrottleErrorCode{Codes: retry.DefaultThrottleErrorCodes}

// classify turns an error of DescribeInstances into one line that says what
// to do.
func classify(err error, region, profile string) error {
	where := regionLabel(region)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("ec2 discovery in %s: %w", where, err)
	}
	attempts := ""
	var maxErr *retry.MaxAttemptsError
	if errors.As(err, &maxErr) {
		attempts = fmt.Sprintf(" after %d attempts", maxErr.Attempt)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		code := api.ErrorCode()
		switch {
		case throttleCodes.IsErrorThrottle(err) == aws.TrueTernary:
			return &ec2Error{
				msg: fmt.Sprintf("EC2 API throttled in %s (%s%s): the account's EC2 request rate is used up; wait a minute and try again",
					where, code, attempts),
				kind: ErrThrottled, cause: err,
			}
		case code == "UnauthorizedOperation" || code == "AccessDenied" || code == "AccessDeniedException":
			return &ec2Error{
				msg: fmt.Sprintf("access denied to ec2:DescribeInstances in %s: grant it to the IAM identity gantry runs as%s (%s: %s)",
					where, identityLabel(profile), code, oneLine(errors.New(api.ErrorMessage()))),
				kind: ErrAccessDenied, cause: err,
			}
		case code == "AuthFailure" || code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch" ||
			code == "ExpiredToken" || code == "RequestExpired" || code == "UnrecognizedClientException":
			return &ec2Error{
				msg: fmt.Sprintf("AWS rejected the credentials%s in %s (%s): refresh them (aws sso login, new keys) and try again",
					profileLabel(profile), where, code),
				kind: ErrAccessDenied, cause: err,
			}
		}
	}
	if isIdentityError(err) {
		return noCredentials(profile, err)
	}
	return fmt.Errorf("ec2 discovery in %s: %s", where, oneLine(err))
}

// isIdentityError tells the SDK's failure to get credentials for signing,
// which carries no type of its own.
func isIdentityError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "get identity:") || strings.Contains(s, "failed to retrieve credentials")
}

func tagValue(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// badTag returns the key and the problem of the first of the tags gantry
// reads (Name, the services tag, DockerSocketTag) whose value breaks the
// rules of package names; "" and nil when all are good or absent.
func badTag(in types.Instance, servicesTag string) (string, error) {
	if v := strings.TrimSpace(tagValue(in.Tags, "Name")); v != "" {
		if err := names.Check(v); err != nil {
			return "Name", err
		}
	}
	if !utf8.ValidString(tagValue(in.Tags, servicesTag)) {
		return servicesTag, fmt.Errorf("not valid UTF-8: %w", names.ErrInvalid)
	}
	for _, s := range splitServices(tagValue(in.Tags, servicesTag)) {
		if err := names.Check(s); err != nil {
			return servicesTag, fmt.Errorf("service %s: %w", shortQuote(s), err)
		}
	}
	if v := strings.TrimSpace(tagValue(in.Tags, DockerSocketTag)); v != "" {
		if err := names.CheckSocketPath(v); err != nil {
			return DockerSocketTag, err
		}
	}
	return "", nil
}

// maxQuoted is how much of an untrusted value a warning shows.
const maxQuoted = 80

// shortQuote quotes v for a warning on one line (control characters and
// bytes that are not UTF-8 escaped), cut to its first maxQuoted bytes.
func shortQuote(v string) string {
	if len(v) <= maxQuoted {
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("%q... (%d bytes)", v[:maxQuoted], len(v))
}

func splitServices(v string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

func address(in types.Instance, from string) string {
	switch from {
	case AddressPublicIP:
		return strings.TrimSpace(aws.ToString(in.PublicIpAddress))
	case AddressPrivateDNS:
		return strings.TrimSpace(aws.ToString(in.PrivateDnsName))
	default:
		return strings.TrimSpace(aws.ToString(in.PrivateIpAddress))
	}
}

func addressLabel(from string) string {
	switch from {
	case AddressPublicIP:
		return "public IP"
	case AddressPrivateDNS:
		return "private DNS"
	default:
		return "private IP"
	}
}

func regionLabel(region string) string {
	if region == "" {
		return "the default region"
	}
	return region
}

func profileLabel(profile string) string {
	if profile == "" {
		return ""
	}
	return fmt.Sprintf(" for profile %q", profile)
}

func identityLabel(profile string) string {
	if profile == "" {
		return " (AWS_PROFILE, keys or instance role)"
	}
	return fmt.Sprintf(" (profile %q)", profile)
}

// oneLine keeps an error on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
