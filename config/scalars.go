package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Size is a byte count written as 500m, 2g, 1t or plain bytes.
type Size int64

// UnmarshalYAML parses a size.
func (z *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*z = Size(v)
	return nil
}

// ParseSize parses "500m", "2g", "1t", "800k" or a plain byte count.
func ParseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (use e.g. 500m, 2g, 1t)", s)
	}
	var n int64
	fmt.Sscan(m[1], &n)
	shift := map[string]uint{"": 0, "k": 10, "m": 20, "g": 30, "t": 40}[m[2]]
	return n << shift, nil
}

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*([kmgt]?)b?$`)

// Count is "3" (hosts) or "50%" (of the service's hosts).
type Count struct {
	N       int
	Percent bool
	set     bool
}

// UnmarshalYAML parses a count or a percentage.
func (c *Count) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSpace(n.Value)
	pct := strings.HasSuffix(v, "%")
	var x int
	if _, err := fmt.Sscan(strings.TrimSuffix(v, "%"), &x); err != nil || x < 0 || (pct && x > 100) || strings.ContainsAny(strings.TrimSuffix(v, "%"), ".-+ ") {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a host count or percentage (e.g. 2 or 50%%)", n.Line, v)}}
	}
	*c = Count{N: x, Percent: pct, set: true}
	return nil
}

// Of resolves the count against a total number of hosts (percentages
// round up: 50% of 3 hosts is 2).
func (c Count) Of(total int) int {
	if !c.Percent {
		return c.N
	}
	return (c.N*total + 99) / 100
}

// IsSet reports whether the key was given.
func (c Count) IsSet() bool { return c.set }

func (c Count) String() string {
	if c.Percent {
		return fmt.Sprintf("%d%%", c.N)
	}
	return fmt.Sprint(c.N)
}

// EnvValue is one value of a service's env: literal text, or the name of
// a variable in the deployer's environment whose value is a secret.
type EnvValue struct {
	Value   string
	FromEnv string
}

// UnmarshalYAML takes a scalar (literal) or {from_env: NAME}.
func (v *EnvValue) UnmarshalYAML(n *yaml.Node) error {
	bad := func(format string, args ...any) error {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		*v = EnvValue{Value: n.Value}
		if n.Tag == "!!null" {
			v.Value = ""
		}
		return nil
	case yaml.MappingNode:
		if len(n.Content) != 2 || n.Content[0].Value != "from_env" || n.Content[1].Kind != yaml.ScalarNode || n.Content[1].Value == "" {
			return bad("want a value, or {from_env: NAME} to take it from the deployer's environment")
		}
		*v = EnvValue{FromEnv: n.Content[1].Value}
		return nil
	}
	return bad("want a value, or {from_env: NAME} to take it from the deployer's environment")
}

// Argv is a command: a list is taken as it is (exec form), a string is run
// with /bin/sh -c (shell form, as in a Dockerfile).
type Argv []string

// UnmarshalYAML takes a string or a list of strings.
func (a *Argv) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch {
		case n.Tag == "!!null":
			*a = nil
		case strings.TrimSpace(n.Value) == "":
			*a = Argv{}
		default:
			*a = Argv{"/bin/sh", "-c", n.Value}
		}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil || n.Kind != yaml.SequenceNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a command line (run by /bin/sh -c) or a list of arguments", n.Line)}}
	}
	if list == nil {
		list = []string{}
	}
	*a = list
	return nil
}

// StringList is one string or a list of them.
type StringList []string

// UnmarshalYAML takes a string or a list of strings.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = StringList{n.Value}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil || n.Kind != yaml.SequenceNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a path or a list of paths", n.Line)}}
	}
	*l = list
	return nil
}

// Duration is a time.Duration written in YAML as "500ms", "30s", "2m".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	// A *yaml.TypeError lets the decoder go on and report every problem.
	bad := func(format string, args ...any) error {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
	}
	var s string
	if err := n.Decode(&s); err != nil {
		return bad("want a duration like 500ms or 30s")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return bad("%q is not a duration (use e.g. 500ms, 30s, 2m)", s)
	}
	if v < 0 {
		return bad("duration %q must not be negative", s)
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Share is a fraction written as a percentage (5%, 0.5%) or a number
// between 0 and 1 (0.05).
type Share struct {
	F float64
}

// UnmarshalYAML parses a share.
func (s *Share) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSpace(n.Value)
	var x float64
	_, err := fmt.Sscan(strings.TrimSuffix(v, "%"), &x)
	if strings.HasSuffix(v, "%") {
		x /= 100
	}
	if err != nil || x < 0 || x > 1 || strings.ContainsAny(v, " +") {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a share (e.g. 5%% or 0.05)", n.Line, v)}}
	}
	s.F = x
	return nil
}

func (s Share) String() string { return fmt.Sprintf("%g%%", s.F*100) }
