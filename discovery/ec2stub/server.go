package ec2stub

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// APIVersion is the EC2 API version the server speaks.
const APIVersion = "2016-11-15"

// Instance is one instance the server knows. The JSON names are those of the
// file the ec2stub command reads.
type Instance struct {
	ID string `json:"id"`
	// State is the instance-state-name: pending, running, stopping, stopped,
	// shutting-down or terminated. Empty means running.
	State      string            `json:"state,omitempty"`
	Zone       string            `json:"zone,omitempty"`
	PrivateIP  string            `json:"private_ip,omitempty"`
	PublicIP   string            `json:"public_ip,omitempty"`
	PrivateDNS string            `json:"private_dns,omitempty"`
	PublicDNS  string            `json:"public_dns,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
}

func (in Instance) state() string {
	if in.State == "" {
		return "running"
	}
	return in.State
}

// stateCodes are EC2's numeric codes for the instance states.
var stateCodes = map[string]int{
	"pending": 0, "running": 16, "shutting-down": 32,
	"terminated": 48, "stopping": 64, "stopped": 80,
}

// Server answers DescribeInstances. The zero value is not usable: call New.
type Server struct {
	mu        sync.Mutex
	instances []Instance
	pageSize  int
	throttle  int // calls left to throttle; <0: all
	deny      bool
	requests  []url.Values
}

// New returns a server that knows instances, in that order.
func New(instances []Instance) *Server {
	return &Server{instances: append([]Instance(nil), instances...)}
}

// SetInstances replaces the instances the server knows.
func (s *Server) SetInstances(instances []Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances = append([]Instance(nil), instances...)
}

// SetPageSize sets the page size used when a request has no MaxResults;
// 0 (the default) answers everything in one page.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = n
}

// Throttle makes the next n calls fail with RequestLimitExceeded; a negative
// n makes every call fail until Throttle(0).
func (s *Server) Throttle(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = n
}

// DenyAccess makes every call fail with UnauthorizedOperation while on.
func (s *Server) DenyAccess(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny = on
}

// Calls is the number of requests the server has answered, errors included.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// Requests returns the parsed form bodies of the requests answered so far.
func (s *Server) Requests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]url.Values, len(s.requests))
	copy(out, s.requests)
	return out
}

// Reset forgets the recorded requests.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// ServeHTTP answers one EC2 Query API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "InvalidAction", "the EC2 Query API takes POST requests")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "MalformedQueryString", err.Error())
		return
	}
	form := r.PostForm

	s.mu.Lock()
	s.requests = append(s.requests, form)
	throttled := s.throttle != 0
	if s.throttle > 0 {
		s.throttle--
	}
	deny := s.deny
	instances := append([]Instance(nil), s.instances...)
	pageSize := s.pageSize
	s.mu.Unlock()

	switch {
	case form.Get("Action") != "DescribeInstances":
		writeError(w, http.StatusBadRequest, "InvalidAction",
			fmt.Sprintf("The action %s is not valid for this web service.", form.Get("Action")))
	case form.Get("Version") != APIVersion:
		writeError(w, http.StatusBadRequest, "InvalidParameterValue",
			fmt.Sprintf("Unsupported API version %q, want %s.", form.Get("Version"), APIVersion))
	case throttled:
		writeError(w, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
	case deny:
		writeError(w, http.StatusForbidden, "UnauthorizedOperation",
			"You are not authorized to perform this operation. User: arn:aws:iam::000000000000:user/ec2stub is not authorized to perform: ec2:DescribeInstances because no identity-based policy allows the ec2:DescribeInstances action")
	default:
		resp, code, msg := describe(form, instances, pageSize)
		if code != "" {
			writeError(w, http.StatusBadRequest, code, msg)
			return
		}
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		_, _ = w.Write([]byte(xml.Header))
		enc := xml.NewEncoder(w)
		_ = enc.Encode(resp)
	}
}

// filter is one Filter.N of a request.
type filter struct {
	name   string
	values []string
}

var (
	filterName  = regexp.MustCompile(`^Filter\.(\d+)\.Name$`)
	filterValue = regexp.MustCompile(`^Filter\.(\d+)\.Value\.(\d+)$`)
	instanceID  = regexp.MustCompile(`^InstanceId\.(\d+)$`)
)

func parseFilters(form url.Values) ([]filter, []string) {
	byN := map[int]*filter{}
	get := func(n int) *filter {
		if byN[n] == nil {
			byN[n] = &filter{}
		}
		return byN[n]
	}
	var ids []string
	for k, v := range form {
		if m := filterName.FindStringSubmatch(k); m != nil {
			n, _ := strconv.Atoi(m[1])
			get(n).name = v[0]
		} else if m := filterValue.FindStringSubmatch(k); m != nil {
			n, _ := strconv.Atoi(m[1])
			get(n).values = append(get(n).values, v[0])
		} else if instanceID.MatchString(k) {
			ids = append(ids, v[0])
		}
	}
	ns := make([]int, 0, len(byN))
	for n := range byN {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	out := make([]filter, 0, len(ns))
	for _, n := range ns {
		out = append(out, *byN[n])
	}
	return out, ids
}

// describe answers DescribeInstances, or returns an error code and message.
func describe(form url.Values, instances []Instance, pageSize int) (*describeInstancesResponse, string, string) {
	filters, ids := parseFilters(form)
	for _, f := range filters {
		if !knownFilter(f.name) {
			return nil, "InvalidParameterValue", fmt.Sprintf("The filter '%s' is invalid", f.name)
		}
	}
	if v := form.Get("MaxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 || n > 1000 {
			return nil, "InvalidParameterValue",
				fmt.Sprintf("Value ( %s ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", v)
		}
		if len(ids) > 0 {
			return nil, "InvalidParameterCombination",
				"The parameter instancesSet cannot be used with the parameter maxResults"
		}
		pageSize = n
	}

	var matched []Instance
	for _, in := range instances {
		if len(ids) > 0 && !contains(ids, in.ID) {
			continue
		}
		if matches(in, filters) {
			matched = append(matched, in)
		}
	}

	start := 0
	if tok := form.Get("NextToken"); tok != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(tok, "stub-page-"))
		if err != nil || !strings.HasPrefix(tok, "stub-page-") || n < 0 || n > len(matched) {
			return nil, "InvalidParameterValue", fmt.Sprintf("The token '%s' is invalid", tok)
		}
		start = n
	}
	end := len(matched)
	if pageSize > 0 && start+pageSize < end {
		end = start + pageSize
	}

	resp := &describeInstancesResponse{
		XMLNS:     "http://ec2.amazonaws.com/doc/" + APIVersion + "/",
		RequestID: requestID(),
	}
	for _, in := range matched[start:end] {
		resp.Reservations = append(resp.Reservations, reservation{
			ID:        "r-" + strings.TrimPrefix(in.ID, "i-"),
			OwnerID:   "000000000000",
			Instances: []instance{toXML(in)},
		})
	}
	if end < len(matched) {
		resp.NextToken = "stub-page-" + strconv.Itoa(end)
	}
	return resp, "", ""
}

func knownFilter(name string) bool {
	switch {
	case name == "tag-key", name == "instance-state-name", name == "instance-id":
		return true
	case strings.HasPrefix(name, "tag:") && len(name) > len("tag:"):
		return true
	}
	return false
}

func matches(in Instance, filters []filter) bool {
	for _, f := range filters {
		ok := false
		for _, want := range f.values {
			switch {
			case f.name == "instance-state-name":
				ok = glob(want, in.state())
			case f.name == "instance-id":
				ok = glob(want, in.ID)
			case f.name == "tag-key":
				for k := range in.Tags {
					if glob(want, k) {
						ok = true
						break
					}
				}
			default: // tag:KEY
				v, has := in.Tags[strings.TrimPrefix(f.name, "tag:")]
				ok = has && glob(want, v)
			}
			if ok {
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// glob matches s against pattern, where * is any run of characters and ? is
// any one character, as EC2 filter values do.
func glob(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if glob(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && glob(pattern[1:], s[1:])
	default:
		return s != "" && s[0] == pattern[0] && glob(pattern[1:], s[1:])
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

var (
	reqMu sync.Mutex
	reqN  int
)

func requestID() string {
	reqMu.Lock()
	defer reqMu.Unlock()
	reqN++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", reqN)
}

// XML shapes of the EC2 Query API.

type describeInstancesResponse struct {
	XMLName      xml.Name      `xml:"DescribeInstancesResponse"`
	XMLNS        string        `xml:"xmlns,attr"`
	RequestID    string        `xml:"requestId"`
	Reservations []reservation `xml:"reservationSet>item"`
	NextToken    string        `xml:"nextToken,omitempty"`
}

type reservation struct {
	ID        string     `xml:"reservationId"`
	OwnerID   string     `xml:"ownerId"`
	Instances []instance `xml:"instancesSet>item"`
}

type instance struct {
	ID         string     `xml:"instanceId"`
	State      state      `xml:"instanceState"`
	PrivateDNS string     `xml:"privateDnsName"`
	PublicDNS  string     `xml:"dnsName"`
	Placement  placement  `xml:"placement"`
	PrivateIP  string     `xml:"privateIpAddress,omitempty"`
	PublicIP   string     `xml:"ipAddress,omitempty"`
	Tags       []tag      `xml:"tagSet>item,omitempty"`
	LaunchTime launchTime `xml:"launchTime"`
}

type state struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type placement struct {
	AvailabilityZone string `xml:"availabilityZone"`
}

type tag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type launchTime struct{}

func (launchTime) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	return e.EncodeElement("2024-01-01T00:00:00.000Z", start)
}

func toXML(in Instance) instance {
	out := instance{
		ID:         in.ID,
		State:      state{Code: stateCodes[in.state()], Name: in.state()},
		PrivateDNS: in.PrivateDNS,
		PublicDNS:  in.PublicDNS,
		Placement:  placement{AvailabilityZone: in.Zone},
		PrivateIP:  in.PrivateIP,
		PublicIP:   in.PublicIP,
	}
	keys := make([]string, 0, len(in.Tags))
	for k := range in.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out.Tags = append(out.Tags, tag{Key: k, Value: in.Tags[k]})
	}
	return out
}

type errorResponse struct {
	XMLName   xml.Name   `xml:"Response"`
	Errors    []apiError `xml:"Errors>Error"`
	RequestID string     `xml:"RequestID"`
}

type apiError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(errorResponse{
		Errors:    []apiError{{Code: code, Message: msg}},
		RequestID: requestID(),
	})
}

// Start serves s on a new httptest server on 127.0.0.1. Close it when done;
// its URL is the endpoint to give the SDK (AWS_ENDPOINT_URL_EC2 or
// ec2.Options.BaseEndpoint).
func (s *Server) Start() *httptest.Server {
	return httptest.NewServer(s)
}

// Listen serves s on addr, which must be a loopback address such as
// 127.0.0.1:0, until ctx is done. It returns the address it listens on and a
// channel that yields the server's final error (nil after ctx is done).
func (s *Server) Listen(ctx context.Context, addr string) (string, <-chan error, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, fmt.Errorf("ec2stub: address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", nil, fmt.Errorf("ec2stub: address %q: only loopback addresses (127.0.0.1, ::1) are served", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("ec2stub: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	return ln.Addr().String(), done, nil
}
