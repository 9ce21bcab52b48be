package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// HealthKind is how a container is probed.
type HealthKind string

// Health check kinds.
const (
	// HealthHTTP GETs a path on the container's port and wants a status.
	HealthHTTP HealthKind = "http"
	// HealthTCP wants a TCP connection to the container's port.
	HealthTCP HealthKind = "tcp"
	// HealthCommand runs a command inside the container and wants exit 0.
	HealthCommand HealthKind = "command"
	// HealthDocker wants the image's own HEALTHCHECK to report healthy.
	HealthDocker HealthKind = "docker"
	// HealthRunning wants the container running, without a restart, for
	// MinRunning: for a worker with nothing to probe.
	HealthRunning HealthKind = "running"
)

// errNoDockerHealthcheck: health kind docker on an image without one.
var errNoDockerHealthcheck = errors.New("the image has no HEALTHCHECK, so Docker never reports it healthy: add one to the image or choose another health.kind")

// Describe names what is probed, for messages: "10.0.0.1:8080/healthz".
func (hc HealthCheck) Describe(addr string) string {
	switch hc.Kind {
	case HealthTCP:
		return "tcp " + addr
	case HealthCommand:
		return fmt.Sprintf("command %q", strings.Join(hc.Command, " "))
	case HealthDocker:
		return "the image's HEALTHCHECK"
	case HealthRunning:
		return "the container"
	}
	return addr + hc.Path
}

// probeOnce makes one probe of container id (listening on addr) and says
// whether it passed and, if not, why. fatal is set when waiting longer
// cannot help (the image has no HEALTHCHECK). since is when the checks
// began: the running probe counts from it, by this machine's clock (the
// host's may differ).
//
// With kind docker, an image without a HEALTHCHECK fails at once when
// strict (the version a deploy brings: the config asks for one); a
// version put back (revert, rollback, repair, or a check of what runs now)
// may predate the HEALTHCHECK, and passes by running.
func probeOnce(ctx context.Context, host Host, id, addr string, hc HealthCheck, since time.Time, strict bool) (pass bool, why string, fatal error) {
	switch hc.Kind {
	case HealthTCP:
		if err := host.ProbeTCP(ctx, addr, hc.Timeout); err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	case HealthCommand:
		code, out, err := host.ExecCheck(ctx, id, hc.Command, hc.Timeout)
		switch {
		case err != nil:
			return false, err.Error(), nil
		case code != 0:
			if out = strings.TrimSpace(out); out != "" {
				return false, fmt.Sprintf("exit code %d: %s", code, out), nil
			}
			return false, fmt.Sprintf("exit code %d", code), nil
		}
		return true, "", nil
	case HealthDocker:
		c, ok, err := host.Inspect(ctx, id)
		switch {
		case err != nil:
			return false, err.Error(), nil
		case !ok:
			return false, "container not found", nil
		case (c.Health == "" || c.Health == "none") && strict:
			return false, "", errNoDockerHealthcheck
		case c.Health == "" || c.Health == "none":
			if !c.Running || c.Restarting {
				return false, "not running (the image has no HEALTHCHECK)", nil
			}
			return true, "", nil
		case c.Health != "healthy":
			return false, "Docker reports it " + c.Health, nil
		}
		return true, "", nil
	case HealthRunning:
		c, ok, err := host.Inspect(ctx, id)
		switch {
		case err != nil:
			return false, err.Error(), nil
		case !ok:
			return false, "container not found", nil
		case !c.Running || c.Restarting:
			return false, "not running", nil
		}
		if up := time.Since(since); up < hc.MinRunning {
			return false, fmt.Sprintf("running for %s of %s", up.Round(time.Millisecond), hc.MinRunning), nil
		}
		return true, "", nil
	}
	status, err := host.ProbeHTTP(ctx, addr, hc.Path, hc.HostHeader, hc.Timeout)
	switch {
	case err != nil:
		return false, err.Error(), nil
	case status != hc.Status:
		return false, fmt.Sprintf("status %d, want %d", status, hc.Status), nil
	}
	return true, "", nil
}

// ProbeOnce makes one health check of a container that already runs (the
// one serving now, for pre-flight, inventory, rollback and decommission
// checks) and reports whether it passes. The running probe passes for a
// running container: it has been up since before gantry looked; so does
// the docker probe for an image without a HEALTHCHECK.
func ProbeOnce(ctx context.Context, host Host, container, addr string, hc HealthCheck) bool {
	pass, _, _ := probeOnce(ctx, host, container, addr, hc, time.Now().Add(-hc.MinRunning), false)
	return pass
}
