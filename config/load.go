package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultPath is the config file used when --config is not given.
const DefaultPath = "gantry.yml"

// Error is a config problem: the file, the key and what is wrong.
type Error struct {
	File    string
	Key     string
	Problem string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s: %s", e.File, e.Problem)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Key, e.Problem)
}

// Load reads, defaults and validates the config file at path. All problems
// found are returned together (as errors joined with errors.Join).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config file %s not found: pass --config PATH or create ./%s", path, DefaultPath)
		}
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates config data; path is used for messages and to
// resolve relative file paths.
func Parse(path string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{File: path, Problem: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	var errs []error
	if err := dec.Decode(&c); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &Error{File: path, Problem: strings.TrimPrefix(err.Error(), "yaml: ")}
		}
		// Type errors leave the rest decoded: report them with the
		// validation problems, each with its key.
		keys := keyLines(&root)
		for _, msg := range te.Errors {
			errs = append(errs, typeProblem(path, msg, keys))
		}
	}
	c.Path = path
	c.applyDefaults()
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &c, nil
}

var (
	lineMsg       = regexp.MustCompile(`^line (\d+): (.*)$`)
	fieldNotFound = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	cannotDecode  = regexp.MustCompile(`^cannot unmarshal !!\w+ ` + "`" + `(.*)` + "`" + ` into (\S+)$`)
)

// typeProblem turns one of yaml.v3's messages ("line 5: field x not found
// in type config.Service") into an Error naming the key.
func typeProblem(file, msg string, keys map[int]string) error {
	m := lineMsg.FindStringSubmatch(msg)
	if m == nil {
		return &Error{File: file, Problem: msg}
	}
	line, problem := m[1], m[2]
	var n int
	fmt.Sscan(line, &n)
	key := keys[n]
	if f := fieldNotFound.FindStringSubmatch(problem); f != nil {
		problem = fmt.Sprintf("unknown key %q (check the spelling; the keys are listed in README.md)", f[1])
	} else if d := cannotDecode.FindStringSubmatch(problem); d != nil {
		problem = fmt.Sprintf("%q is not a valid %s", d[1], strings.TrimPrefix(strings.TrimPrefix(d[2], "[]"), "config."))
	}
	if key == "" {
		return &Error{File: file, Problem: "line " + line + ": " + problem}
	}
	return &Error{File: file, Key: key, Problem: problem + " (line " + line + ")"}
}

// keyLines maps each line that holds a key to the key's dotted path, e.g.
// 17 -> services.www.health.interval.
func keyLines(root *yaml.Node) map[int]string {
	keys := map[int]string{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if _, taken := keys[k.Line]; !taken || v.Kind == yaml.ScalarNode {
					keys[k.Line] = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if _, taken := keys[c.Line]; !taken {
					keys[c.Line] = p
				}
				walk(c, p)
			}
		}
	}
	walk(root, "")
	return keys
}
