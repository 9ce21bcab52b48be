package main

import (
	"fmt"
	"os"
	"sync"

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
	if cfg.SSH.Persist > 0 {
		// Connections are kept by this same binary's ssh-keeper command.
		if exe, err := os.Executable(); err == nil {
			cfg.SSH.KeeperCommand = []string{exe, keeperCommandName}
		}
		// Said once per command: every connection falls back the same way.
		var once sync.Once
		cfg.SSH.KeeperWarn = func(err error) {
			once.Do(func() {
				fmt.Fprintf(os.Stderr, "warning: ssh.persist: %v; connecting directly, without keeping the connections\n", err)
			})
		}
	}
	return cfg, nil
}
