package ec2stub

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"staging", "staging", true},
		{"staging", "stagingx", false},
		{"stag*", "staging", true},
		{"*ing", "staging", true},
		{"s?aging", "staging", true},
		{"s?aging", "saging", false},
		{"*", "", true},
		{"", "", true},
		{"a*b*c", "aXXbYc", true},
		{"a*b*c", "aXXbY", false},
	} {
		if got := glob(c.pattern, c.s); got != c.want {
			t.Errorf("glob(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

type response struct {
	IDs       []string `xml:"reservationSet>item>instancesSet>item>instanceId"`
	NextToken string   `xml:"nextToken"`
	Code      string   `xml:"Errors>Error>Code"`
}

func post(t *testing.T, endpoint string, form url.Values) (int, response) {
	t.Helper()
	form.Set("Action", "DescribeInstances")
	form.Set("Version", APIVersion)
	resp, err := http.PostForm(endpoint, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r response
	if err := xml.Unmarshal(body, &r); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	return resp.StatusCode, r
}

func TestDescribeInstances(t *testing.T) {
	s := New([]Instance{
		{ID: "i-1", Tags: map[string]string{"env": "staging", "team": "a"}},
		{ID: "i-2", Tags: map[string]string{"env": "stage-2"}},
		{ID: "i-3", State: "stopped", Tags: map[string]string{"env": "staging"}},
		{ID: "i-4", Tags: map[string]string{"env": "prod"}},
		{ID: "i-5"},
		{ID: "i-6", Tags: map[string]string{"env": "staging"}},
	})
	ts := s.Start()
	defer ts.Close()

	for _, c := range []struct {
		name string
		form url.Values
		want []string
	}{
		{"all", url.Values{}, []string{"i-1", "i-2", "i-3", "i-4", "i-5", "i-6"}},
		{"tag", url.Values{"Filter.1.Name": {"tag:env"}, "Filter.1.Value.1": {"staging"}}, []string{"i-1", "i-3", "i-6"}},
		{"tag values ORed", url.Values{"Filter.1.Name": {"tag:env"}, "Filter.1.Value.1": {"prod"}, "Filter.1.Value.2": {"stage-2"}}, []string{"i-2", "i-4"}},
		{"wildcard", url.Values{"Filter.1.Name": {"tag:env"}, "Filter.1.Value.1": {"stag*"}}, []string{"i-1", "i-2", "i-3", "i-6"}},
		{"filters ANDed", url.Values{
			"Filter.1.Name": {"tag:env"}, "Filter.1.Value.1": {"staging"},
			"Filter.2.Name": {"instance-state-name"}, "Filter.2.Value.1": {"running"},
		}, []string{"i-1", "i-6"}},
		{"tag-key", url.Values{"Filter.1.Name": {"tag-key"}, "Filter.1.Value.1": {"team"}}, []string{"i-1"}},
		{"instance-id", url.Values{"Filter.1.Name": {"instance-id"}, "Filter.1.Value.1": {"i-5"}}, []string{"i-5"}},
		{"InstanceId.N", url.Values{"InstanceId.1": {"i-4"}, "InstanceId.2": {"i-2"}}, []string{"i-2", "i-4"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, r := post(t, ts.URL, c.form)
			if status != 200 || !reflect.DeepEqual(r.IDs, c.want) || r.NextToken != "" {
				t.Errorf("status %d, ids %v, token %q; want 200, %v, none", status, r.IDs, r.NextToken, c.want)
			}
		})
	}

	// Paging with MaxResults.
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		form := url.Values{"MaxResults": {"5"}}
		if token != "" {
			form.Set("NextToken", token)
		}
		_, r := post(t, ts.URL, form)
		got = append(got, r.IDs...)
		if token = r.NextToken; token == "" {
			if pages != 1 {
				t.Errorf("%d pages, want 2", pages+1)
			}
			break
		}
	}
	if len(got) != 6 {
		t.Errorf("paged ids = %v", got)
	}

	for _, c := range []struct {
		name string
		form url.Values
		code string
	}{
		{"unknown filter", url.Values{"Filter.1.Name": {"vpc-id"}, "Filter.1.Value.1": {"x"}}, "InvalidParameterValue"},
		{"MaxResults too small", url.Values{"MaxResults": {"4"}}, "InvalidParameterValue"},
		{"bad token", url.Values{"NextToken": {"nope"}}, "InvalidParameterValue"},
		{"ids and MaxResults", url.Values{"MaxResults": {"5"}, "InstanceId.1": {"i-1"}}, "InvalidParameterCombination"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, r := post(t, ts.URL, c.form)
			if status != 400 || r.Code != c.code {
				t.Errorf("status %d code %q, want 400 %s", status, r.Code, c.code)
			}
		})
	}

	s.Reset()
	s.Throttle(1)
	if status, r := post(t, ts.URL, url.Values{}); status != 503 || r.Code != "RequestLimitExceeded" {
		t.Errorf("throttled: %d %q", status, r.Code)
	}
	if status, _ := post(t, ts.URL, url.Values{}); status != 200 {
		t.Errorf("after throttle: %d", status)
	}
	s.DenyAccess(true)
	if status, r := post(t, ts.URL, url.Values{}); status != 403 || r.Code != "UnauthorizedOperation" {
		t.Errorf("denied: %d %q", status, r.Code)
	}
	if n := s.Calls(); n != 3 {
		t.Errorf("Calls = %d, want 3", n)
	}
}

func TestListen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := New([]Instance{{ID: "i-1"}})
	for _, addr := range []string{"0.0.0.0:0", "10.0.0.1:0", ":0", "example.com:80"} {
		if _, _, err := s.Listen(ctx, addr); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Listen(%q) = %v, want refused", addr, err)
		}
	}
	addr, done, err := s.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, r := post(t, "http://"+addr, url.Values{}); !reflect.DeepEqual(r.IDs, []string{"i-1"}) {
		t.Errorf("ids = %v", r.IDs)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}
