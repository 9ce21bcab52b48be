package main

import (
	"os"

	"github.com/gantry-dev/gantry/config"
)

// loadConfig loads the config file at path and gives it the deployer's
// environment: a command's run starts here, so this is where gantry
// decides to read the process environment for the registry password and
// webhook URLs (config.UseEnv); loading itself reads no variable.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	cfg.UseEnv(os.LookupEnv)
	return cfg, nil
}
