// Package config loads and validates gantry.yml: the registry, how to reach
// hosts over SSH, the environments (their hosts and load balancers) and the
// services gantry deploys. Every problem is reported at load time with the
// file, the key and what is wrong, so nothing on the fleet changes because of
// a bad config.
//
// The files, by job:
//   - schema.go: the documented types (Config, Environment, Service, ...)
//     and lookups on them (Environment, Service, Machine, ...).
//   - scalars.go: YAML scalar types and their parsing: Duration, Size,
//     Count (hosts or a percentage), Argv, StringList, EnvValue.
//   - load.go: Load and Parse (read, decode, default, validate) and the
//     rewriting of YAML decoder messages into an Error naming file and key.
//   - defaults.go: the Default* values and how they fill keys left out.
//   - validate.go: every check of a loaded config, all problems at once.
//   - env.go: a service's container environment, and what a run takes from
//     the deployer's environment (from_env secrets, env files' bare names,
//     the registry password, webhook URLs). config never reads a variable
//     of the process itself: these read through a LookupFunc given to them
//     or to Config.UseEnv by the command that starts the run (os.LookupEnv),
//     so loading reads none and tests give their own. (Only the home
//     directory is asked of the OS, to expand ~/ in the file's paths.)
package config
