package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestServiceExpandEnv(t *testing.T) {
	svc := Service{Env: map[string]EnvValue{
		"LISTEN":  {Value: "${host.address}:8080"},
		"NAME":    {Value: "${host.name}"},
		"WHERE":   {Value: "${host.name} in ${host.zone}"},
		"PLAIN":   {Value: "no placeholders $HOME"},
		"ZONE_ID": {Value: "zone-${host.zone}"},
	}}
	tests := []struct {
		name string
		host Host
		want []string
	}{
		{
			name: "all facts",
			host: Host{Name: "host1", Address: "10.0.0.1", Zone: "eu-1a"},
			want: []string{
				"LISTEN=10.0.0.1:8080",
				"NAME=host1",
				"PLAIN=no placeholders $HOME",
				"WHERE=host1 in eu-1a",
				"ZONE_ID=zone-eu-1a",
			},
		},
		{
			name: "no zone",
			host: Host{Name: "host2", Address: "::1"},
			want: []string{
				"LISTEN=::1:8080",
				"NAME=host2",
				"PLAIN=no placeholders $HOME",
				"WHERE=host2 in ",
				"ZONE_ID=zone-",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := svc.ExpandEnv(tc.host)
			if !slices.Equal(got, tc.want) {
				t.Errorf("ExpandEnv =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
	if got := (Service{}).ExpandEnv(Host{Name: "h"}); len(got) != 0 {
		t.Errorf("ExpandEnv of no env = %q, want empty", got)
	}
}

func TestResolveSecrets(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "www.env")
	if err := os.WriteFile(envFile, []byte("# the web app's secrets\n\nAPI_KEY=from-the-file\n  PADDED=a value with spaces \nOVERRIDDEN=file\nEMPTY=\nFROM_PROCESS\nUNSET_BARE\nQUOTED=\"kept\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := withService(t, "    env_file: www.env\n    env:\n      DB_PASSWORD: {from_env: CI_DB_PASSWORD}\n      OVERRIDDEN: literal\n      LISTEN: \"${host.address}:8080\"\n")
	path := filepath.Join(dir, "gantry.yml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"CI_DB_PASSWORD": "s3cr3t-db-pw", "FROM_PROCESS": "bare-name-value"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }

	secrets, err := c.ResolveSecrets("www", lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"API_KEY": "from-the-file", "PADDED": "a value with spaces ", "EMPTY": "", "FROM_PROCESS": "bare-name-value",
		"QUOTED": `"kept"`, "DB_PASSWORD": "s3cr3t-db-pw",
	}
	if !reflect.DeepEqual(secrets, want) {
		t.Errorf("secrets = %q\nwant %q", secrets, want)
	}
	env := c.Services["www"].ExpandEnvPort(Host{Name: "host1", Address: "10.0.0.1"}, 8080, secrets)
	wantEnv := []string{"API_KEY=from-the-file", "DB_PASSWORD=s3cr3t-db-pw", "EMPTY=", "FROM_PROCESS=bare-name-value",
		"LISTEN=10.0.0.1:8080", "OVERRIDDEN=literal", "PADDED=a value with spaces ", `QUOTED="kept"`}
	if !slices.Equal(env, wantEnv) {
		t.Errorf("container env =\n%q\nwant\n%q", env, wantEnv)
	}
	got := c.Secrets(lookup)
	for _, s := range []string{"s3cr3t-db-pw", "from-the-file", "bare-name-value"} {
		if !slices.Contains(got, s) {
			t.Errorf("Secrets() = %q, want it to hold %q", got, s)
		}
	}
	if slices.Contains(got, "literal") {
		t.Errorf("Secrets() = %q holds a literal value", got)
	}

	// Missing variable and missing file: both named, with their keys.
	os.Remove(envFile)
	_, err = c.ResolveSecrets("www", func(string) (string, bool) { return "", false })
	if err == nil {
		t.Fatal("ResolveSecrets succeeded with the variable and the file missing")
	}
	for _, w := range []string{
		path + ": services.www.env.DB_PASSWORD: environment variable CI_DB_PASSWORD is not set on the deployer's machine",
		path + ": services.www.env_file[0]: env file " + envFile + " not found",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
	// Set but empty is set.
	if s, err := c.ResolveSecrets("www", func(k string) (string, bool) { return "", k == "CI_DB_PASSWORD" }); err == nil || s != nil {
		t.Errorf("with the env file missing: %v, %v", s, err)
	}
}

func TestReadEnvFileRejectsMalformedLinesWithoutEchoingThem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.env")
	if err := os.WriteFile(path, []byte("GOOD=1\nhunter2-is-my-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadEnvFile(path, nil)
	if err == nil || !strings.Contains(err.Error(), path+", line 2: not NAME=VALUE") {
		t.Fatalf("ReadEnvFile = %v, want line 2 reported", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error shows the line: %v", err)
	}
}

func TestResolveSecretsOnlyForTheServiceDeployed(t *testing.T) {
	yml := edit(t, withService(t, "    env:\n      DB: {from_env: WWW_DB}\n"), "services:\n", "services:\n  api:\n    image: gantry/api\n    port: 9090\n")
	c, err := Parse("/srv/gantry.yml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	none := func(string) (string, bool) { return "", false }
	if s, err := c.ResolveSecrets("api", none); err != nil || len(s) != 0 {
		t.Errorf("api: %v %v, want no secrets and no error (WWW_DB is www's)", s, err)
	}
	if _, err := c.ResolveSecrets("www", none); err == nil || !strings.Contains(err.Error(), "WWW_DB") {
		t.Errorf("www: %v, want WWW_DB named", err)
	}
}

// TestEnvironmentReadOnlyThroughTheLookupGiven: loading reads no variable,
// and the registry password and webhook URLs come from the environment the
// command gives the config, not from the process's.
func TestEnvironmentReadOnlyThroughTheLookupGiven(t *testing.T) {
	yml := edit(t, minimalYAML, "  address: 127.0.0.1:5000\n", "  address: 127.0.0.1:5000\n  username: deployer\n  password_env: T_REGISTRY_PASSWORD\n")
	yml = edit(t, yml, "    hosts:\n", "    notify:\n      webhooks:\n        - url_env: T_WEBHOOK\n        - url: https://hooks.example.com/literal\n    hosts:\n")
	c, err := Parse("/srv/gantry.yml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	// In the process's environment, but not given to the config.
	t.Setenv("T_REGISTRY_PASSWORD", "process-pw")
	t.Setenv("T_WEBHOOK", "https://hooks.example.com/process")
	hooks := c.Environments["lab"].Notify.Webhooks

	if _, err := c.RegistryPassword(); err == nil || err.Error() != "/srv/gantry.yml: registry.password_env: environment variable T_REGISTRY_PASSWORD is not set" {
		t.Errorf("RegistryPassword before UseEnv: %v, want T_REGISTRY_PASSWORD not set", err)
	}
	if u := hooks[0].Endpoint(nil); u != "" {
		t.Errorf("Endpoint(nil) = %q, want empty: no environment given", u)
	}
	if u := hooks[1].Endpoint(nil); u != "https://hooks.example.com/literal" {
		t.Errorf("Endpoint of a literal url = %q", u)
	}

	vars := map[string]string{"T_REGISTRY_PASSWORD": "given-pw", "T_WEBHOOK": "https://hooks.example.com/given"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	c.UseEnv(lookup)
	if pw, err := c.RegistryPassword(); err != nil || pw != "given-pw" {
		t.Errorf("RegistryPassword = %q, %v; want the given environment's", pw, err)
	}
	if u := hooks[0].Endpoint(c.LookupEnv); u != "https://hooks.example.com/given" {
		t.Errorf("Endpoint = %q, want the given environment's", u)
	}
	got := c.Secrets(lookup)
	for _, s := range []string{"given-pw", "https://hooks.example.com/given", "https://hooks.example.com/literal"} {
		if !slices.Contains(got, s) {
			t.Errorf("Secrets() = %q, want it to hold %q", got, s)
		}
	}
	for _, s := range got {
		if strings.Contains(s, "process") {
			t.Errorf("Secrets() = %q holds a value of the process's environment", got)
		}
	}

	// Set but empty is set, as with os.LookupEnv.
	vars["T_REGISTRY_PASSWORD"] = ""
	if pw, err := c.RegistryPassword(); err != nil || pw != "" {
		t.Errorf("RegistryPassword with the variable empty = %q, %v; want empty, no error", pw, err)
	}
}
