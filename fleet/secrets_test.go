package fleet

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/rollout"
)

// A secret missing from the deployer's environment stops a deploy or a
// rollback before any machine is dialled (the hosts here do not exist).
func TestMissingSecretIsAPreflightErrorBeforeAnyConnection(t *testing.T) {
	cfg, err := config.Parse("/srv/gantry.yml", []byte(`registry:
  address: 127.0.0.1:5000
ssh:
  user: deploy
  identity_file: /nonexistent/key
environments:
  lab:
    hosts:
      - name: host1
        address: 192.0.2.1
        services: [www]
services:
  www:
    image: gantry/www
    port: 8080
    env_file: /nonexistent/www.env
    env:
      DB_PASSWORD: {from_env: GANTRY_TEST_DB_PASSWORD}
`))
	if err != nil {
		t.Fatal(err)
	}
	o := DeployOptions{Config: cfg, Env: "lab", Target: "www@abc1234", Out: io.Discard,
		LookupEnv: func(string) (string, bool) { return "", false }}
	_, err = Deploy(context.Background(), o)
	if !errors.Is(err, rollout.ErrPreflight) {
		t.Fatalf("Deploy = %v, want a pre-flight error", err)
	}
	for _, w := range []string{"services.www.env.DB_PASSWORD: environment variable GANTRY_TEST_DB_PASSWORD is not set", "env file /nonexistent/www.env not found"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
	_, err = Rollback(context.Background(), RollbackOptions{DeployOptions: o, Service: "www"})
	if !errors.Is(err, rollout.ErrPreflight) || !strings.Contains(err.Error(), "GANTRY_TEST_DB_PASSWORD") {
		t.Errorf("Rollback = %v, want a pre-flight error naming the variable", err)
	}
}
