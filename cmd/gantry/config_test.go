package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLoadConfigGivesTheProcessEnvironment: where a command starts, the
// config it loads reads the process's environment (registry password).
func TestLoadConfigGivesTheProcessEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gantry.yml")
	yml := `registry:
  address: 127.0.0.1:5000
  username: deployer
  password_env: GANTRY_TEST_REGISTRY_PW
ssh:
  user: deploy
  identity_file: /keys/id
environments:
  lab:
    hosts:
      - name: host1
        address: 127.0.2.1
        services: [www]
services:
  www:
    image: gantry/www
    port: 8080
`
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GANTRY_TEST_REGISTRY_PW", "pw-from-the-process")
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if pw, err := cfg.RegistryPassword(); err != nil || pw != "pw-from-the-process" {
		t.Errorf("RegistryPassword = %q, %v; want the process's value", pw, err)
	}
}
