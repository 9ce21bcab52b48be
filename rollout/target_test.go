package rollout

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	const registry, repo = "127.0.0.1:5000", "gantry/www"
	tests := []struct {
		in           string
		allowMutable bool
		want         Target
		wantErr      string // substring of the error; "" for success
		mutable      bool   // error must wrap ErrMutableTag
	}{
		{in: "www@abc1234", want: Target{Service: "www", Tag: "abc1234", Image: "127.0.0.1:5000/gantry/www:abc1234"}},
		{in: "www@v1.2.3", want: Target{Service: "www", Tag: "v1.2.3", Image: "127.0.0.1:5000/gantry/www:v1.2.3"}},
		{in: "www@3F2C1AB_x-y", want: Target{Service: "www", Tag: "3F2C1AB_x-y", Image: "127.0.0.1:5000/gantry/www:3F2C1AB_x-y"}},
		{in: "www@" + strings.Repeat("a", 128), want: Target{Service: "www", Tag: strings.Repeat("a", 128), Image: "127.0.0.1:5000/gantry/www:" + strings.Repeat("a", 128)}},
		{in: "www", wantErr: "want SERVICE@TAG"},
		{in: "", wantErr: "want SERVICE@TAG"},
		{in: "@abc1234", wantErr: "want SERVICE@TAG"},
		{in: "www@", wantErr: "want SERVICE@TAG"},
		{in: "WWW@abc1234", wantErr: `"WWW" is not a service name`},
		{in: "www@latest", wantErr: `mutable tag "latest"`, mutable: true},
		{in: "www@Latest", wantErr: "--allow-mutable-tag", mutable: true},
		{in: "www@main", wantErr: `mutable tag "main"`, mutable: true},
		{in: "www@production", wantErr: "mutable tag", mutable: true},
		{in: "www@latest", allowMutable: true, want: Target{Service: "www", Tag: "latest", Image: "127.0.0.1:5000/gantry/www:latest"}},
		{in: "www@main", allowMutable: true, want: Target{Service: "www", Tag: "main", Image: "127.0.0.1:5000/gantry/www:main"}},
		{in: "www@bad/tag", wantErr: "is malformed"},
		{in: "www@-x", wantErr: "is malformed"},
		{in: "www@.x", wantErr: "is malformed"},
		{in: "www@a b", wantErr: "is malformed"},
		{in: "www@" + strings.Repeat("a", 129), wantErr: "is malformed"},
		{in: "www@" + strings.Repeat("a", 200), wantErr: "is malformed"},
		{in: "www@sha256:" + strings.Repeat("0", 64), wantErr: "not a digest"},
	}
	for _, tc := range tests {
		name := tc.in
		if len(name) > 40 {
			name = name[:40] + "..."
		}
		t.Run(name, func(t *testing.T) {
			got, err := ParseTarget(tc.in, registry, repo, tc.allowMutable)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseTarget(%q) error: %v", tc.in, err)
				}
				if got != tc.want {
					t.Errorf("ParseTarget(%q) = %+v, want %+v", tc.in, got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseTarget(%q) = %+v, want an error containing %q", tc.in, got, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseTarget(%q) error %q does not contain %q", tc.in, err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.in) {
				t.Errorf("ParseTarget(%q) error %q does not quote the input", tc.in, err)
			}
			if got := errors.Is(err, ErrMutableTag); got != tc.mutable {
				t.Errorf("errors.Is(err, ErrMutableTag) = %v, want %v (err: %v)", got, tc.mutable, err)
			}
		})
	}
}
