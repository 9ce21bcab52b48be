package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ExpandEnv returns the service's literal env for one host, with
// ${host.name}, ${host.address} and ${host.zone} replaced by the host's
// facts and ${port} by the service's port.
func (s Service) ExpandEnv(h Host) []string { return s.ExpandEnvPort(h, s.Port, nil) }

// ExpandEnvPort is ExpandEnv for a container listening on port (start-first
// containers alternate between two), with secrets (from ResolveSecrets)
// added as they are: no placeholder is expanded in a secret.
func (s Service) ExpandEnvPort(h Host, port int, secrets map[string]string) []string {
	facts := map[string]string{"host.name": h.Name, "host.address": h.Address, "host.zone": h.Zone, "port": strconv.Itoa(port)}
	vals := map[string]string{}
	for k, v := range secrets {
		vals[k] = v
	}
	for k, v := range s.Env {
		if v.FromEnv != "" {
			continue
		}
		vals[k] = placeRE.ReplaceAllStringFunc(v.Value, func(m string) string {
			return facts[m[2:len(m)-1]]
		})
	}
	out := make([]string, 0, len(vals))
	for _, k := range sortedKeys(vals) {
		out = append(out, k+"="+vals[k])
	}
	return out
}

// LookupFunc finds a variable of the deployer's environment, as
// os.LookupEnv does. The command that starts a run passes os.LookupEnv.
type LookupFunc func(name string) (string, bool)

// unset is the environment where no variable is set: what a nil
// LookupFunc means.
func unset(string) (string, bool) { return "", false }

// UseEnv gives the config the deployer's environment, read when the run
// needs the registry password (RegistryPassword) and in LookupEnv. The
// command that starts a run passes os.LookupEnv right after loading; until
// then, and for nil, no variable is set. Loading reads no variable.
func (c *Config) UseEnv(lookup LookupFunc) { c.env = lookup }

// LookupEnv reads name through the environment given to UseEnv.
func (c *Config) LookupEnv(name string) (string, bool) {
	if c.env == nil {
		return unset(name)
	}
	return c.env(name)
}

// RegistryPassword is the registry password: the value of the
// registry.password_env variable in the environment given to UseEnv. An
// unset variable is an error naming it; the value never is in one.
func (c *Config) RegistryPassword() (string, error) {
	pw, ok := c.LookupEnv(c.Registry.PasswordEnv)
	if !ok {
		return "", &Error{File: c.Path, Key: "registry.password_env", Problem: fmt.Sprintf("environment variable %s is not set", c.Registry.PasswordEnv)}
	}
	return pw, nil
}

// ResolveSecrets reads the service's secret env values: its env files
// (in order, a later file winning) and its {from_env: NAME} values, from
// lookup. Literal env values win over env files. Every unset variable and
// unreadable file is reported, by key and name; no value is ever put in
// an error.
func (c *Config) ResolveSecrets(service string, lookup LookupFunc) (map[string]string, error) {
	s, err := c.Service(service)
	if err != nil {
		return nil, err
	}
	if lookup == nil {
		lookup = unset
	}
	key := "services." + service
	out := map[string]string{}
	var errs []error
	for i, f := range s.EnvFile {
		vals, err := ReadEnvFile(f, lookup)
		if err != nil {
			errs = append(errs, &Error{File: c.Path, Key: fmt.Sprintf("%s.env_file[%d]", key, i), Problem: err.Error()})
			continue
		}
		for k, v := range vals {
			out[k] = v
		}
	}
	for _, k := range sortedKeys(s.Env) {
		v := s.Env[k]
		if v.FromEnv == "" {
			delete(out, k)
			continue
		}
		val, ok := lookup(v.FromEnv)
		if !ok {
			errs = append(errs, &Error{File: c.Path, Key: key + ".env." + k, Problem: fmt.Sprintf("environment variable %s is not set on the deployer's machine: export it (e.g. from your CI's secrets) and run again", v.FromEnv)})
			continue
		}
		out[k] = val
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ReadEnvFile reads an env file in Docker's --env-file format: one
// VAR=VALUE per line, the value taken as it is (no quotes removed, no
// expansion); a line with VAR alone takes VAR from lookup, and is skipped
// when it is unset; blank lines and lines starting with # are skipped.
// Errors name the file and line, never a value.
func ReadEnvFile(path string, lookup LookupFunc) (map[string]string, error) {
	if lookup == nil {
		lookup = unset
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("env file %s not found on the deployer's machine", path)
		}
		return nil, fmt.Errorf("env file %s: %w", path, err)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("env file %s is not UTF-8 text", path)
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		// Like docker: leading white space goes, trailing stays (it is
		// part of the value).
		line = strings.TrimLeft(line, " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, hasValue := strings.Cut(line, "=")
		if !envKeyRE.MatchString(k) {
			// The line is not echoed: it may hold a secret.
			return nil, fmt.Errorf("env file %s, line %d: not NAME=VALUE (NAME: letters, digits and _)", path, i+1)
		}
		if !hasValue {
			if val, ok := lookup(k); ok {
				out[k] = val
			}
			continue
		}
		out[k] = v
	}
	return out, nil
}

// Endpoint is the webhook's URL: url, or the value of the url_env variable
// found through lookup ("" when that is unset, or lookup is nil).
func (w Webhook) Endpoint(lookup LookupFunc) string {
	if w.URLEnv != "" {
		if lookup == nil {
			return ""
		}
		v, _ := lookup(w.URLEnv)
		return v
	}
	return w.URL
}

// Secrets are the secret values the config points at (the registry
// password, webhook URLs, every service's from_env and env file values),
// found through lookup: output must never show them. What cannot be read
// is skipped here; a run reports it (ResolveSecrets).
func (c *Config) Secrets(lookup LookupFunc) []string {
	var out []string
	if lookup == nil {
		lookup = unset
	}
	if c.Registry.PasswordEnv != "" {
		if v, _ := lookup(c.Registry.PasswordEnv); v != "" {
			out = append(out, v)
		}
	}
	for _, sn := range sortedKeys(c.Services) {
		s := c.Services[sn]
		for _, f := range s.EnvFile {
			if vals, err := ReadEnvFile(f, lookup); err == nil {
				for _, k := range sortedKeys(vals) {
					out = append(out, vals[k])
				}
			}
		}
		for _, k := range sortedKeys(s.Env) {
			if e := s.Env[k].FromEnv; e != "" {
				if v, _ := lookup(e); v != "" {
					out = append(out, v)
				}
			}
		}
	}
	for _, en := range sortedKeys(c.Environments) {
		for _, w := range c.Environments[en].Notify.Webhooks {
			if u := w.Endpoint(lookup); u != "" {
				out = append(out, u)
			}
		}
	}
	return out
}
