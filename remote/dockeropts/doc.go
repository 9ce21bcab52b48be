// Package dockeropts turns gantry's container options (inventory.
// ContainerOptions, as written in gantry.yml) into the Docker Engine API's
// own types, and checks each option the same way when the config is
// loaded, so a mistake is reported with its key before any host is
// touched. Sizes and ulimits are parsed by github.com/docker/go-units, as
// docker run does.
//
// It lives under remote because remote is the one place that imports
// Docker's packages; it imports nothing of gantry but inventory, so the
// config package can use its checks without depending on SSH or the Docker
// client.
package dockeropts
