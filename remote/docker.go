package remote

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/remote/dockeropts"
)

// Docker is a host's Docker daemon, reached through the host's SSH
// connection. It satisfies the host interface of package rollout.
type Docker struct {
	conn   *Conn
	api    *client.Client
	socket string
	// CallTimeout bounds every Docker API call but pulls.
	CallTimeout time.Duration
}

// NewDocker returns a Docker client that dials the daemon's unix socket on
// the host through conn. API versions are negotiated with the daemon.
func NewDocker(conn *Conn, socket string, callTimeout time.Duration) (*Docker, error) {
	api, err := client.NewClientWithOpts(
		// The host name is only used in URLs; every connection goes
		// through the SSH tunnel to the socket below.
		client.WithHost("tcp://docker.invalid:2375"),
		client.WithDialContext(func(ctx context.Context, _, _ string) (net.Conn, error) {
			return conn.DialContext(ctx, "unix", socket)
		}),
		client.WithAPIVersionNegotiation(),
	)
	if err != nil {
		return nil, fmt.Errorf("%s: docker client: %w", conn.Endpoint.Name, err)
	}
	// Pooled connections went through the old SSH connection's tunnels:
	// after a redial, new requests must dial through the new one.
	conn.OnRedial(func() { api.Close() })
	return &Docker{conn: conn, api: api, socket: socket, CallTimeout: callTimeout}, nil
}

// Close releases the client's idle connections (the SSH connection stays).
// The client stays usable.
func (d *Docker) Close() error { return d.api.Close() }

func (d *Docker) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.CallTimeout)
}

func (d *Docker) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// Most likely a stopped or overloaded daemon: say which bound.
		return fmt.Errorf("docker %s on %s: no answer in time (each call is bounded by ssh.docker_call_timeout, %s; pulls by registry.pull_timeout): %w",
			op, d.conn.Endpoint.Name, d.CallTimeout, err)
	}
	return fmt.Errorf("docker %s on %s: %w", op, d.conn.Endpoint.Name, err)
}

// Ping checks the daemon answers and negotiates the API version.
func (d *Docker) Ping(ctx context.Context) error {
	ctx, cancel := d.call(ctx)
	defer cancel()
	var ping types.Ping
	err := retry(ctx, func() (err error) { ping, err = d.api.Ping(ctx); return err })
	if err != nil {
		return d.wrap("ping (socket "+d.socket+")", err)
	}
	// Negotiated from this answer: NegotiateAPIVersion would ping again.
	d.api.NegotiateAPIVersionPing(ping)
	return nil
}

// Pull pulls ref; auth is the registry credential (may be empty).
func (d *Docker) Pull(ctx context.Context, ref string, auth RegistryAuth) error {
	enc, err := auth.encode()
	if err != nil {
		return err
	}
	opts := image.PullOptions{RegistryAuth: enc}
	err = retry(ctx, func() error {
		rc, err := d.api.ImagePull(ctx, ref, opts)
		if err != nil {
			return err
		}
		defer rc.Close()
		// Errors during a pull arrive inside the progress stream.
		return jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil)
	})
	return d.wrap("pull "+ref, err)
}

// HasImage reports whether ref is in the host's image cache.
func (d *Docker) HasImage(ctx context.Context, ref string) (bool, error) {
	ctx, cancel := d.call(ctx)
	defer cancel()
	err := retry(ctx, func() error { _, err := d.api.ImageInspect(ctx, ref); return err })
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, d.wrap("image inspect "+ref, err)
	}
	return true, nil
}

// Inspect returns the container called name, or ok=false if there is none.
func (d *Docker) Inspect(ctx context.Context, name string) (c inventory.Container, ok bool, err error) {
	ctx, cancel := d.call(ctx)
	defer cancel()
	var info container.InspectResponse
	err = retry(ctx, func() (err error) {
		info, err = d.api.ContainerInspect(ctx, name)
		return err
	})
	if errdefs.IsNotFound(err) {
		return inventory.Container{}, false, nil
	}
	if err != nil {
		return inventory.Container{}, false, d.wrap("inspect "+name, err)
	}
	c = inventory.Container{
		ID:           info.ID,
		Name:         strings.TrimPrefix(info.Name, "/"),
		RestartCount: info.RestartCount,
		DataRoot:     dataRootOf(info.ContainerJSONBase),
	}
	if info.Config != nil {
		c.Image = info.Config.Image
		c.Labels = info.Config.Labels
	}
	if info.State != nil {
		c.State = info.State.Status
		c.Running = info.State.Running
		c.Restarting = info.State.Restarting
		c.ExitCode = info.State.ExitCode
		c.StartedAt, _ = time.Parse(time.RFC3339Nano, info.State.StartedAt)
		if info.State.Health != nil {
			c.Health = info.State.Health.Status
		}
	}
	return c, true, nil
}

// Create creates (does not start) a container from spec, on the host
// network, restarting unless stopped, with the spec's container options
// (json-file log rotation unless another logging driver is given).
//
// Creating is not idempotent: when the connection breaks during the call,
// the daemon may or may not have created the container. Create then looks
// (by name) before trying again, and takes a container made from the same
// image with the same labels as its own.
func (d *Docker) Create(ctx context.Context, spec inventory.ContainerSpec) (string, error) {
	ctx, cancel := d.call(ctx)
	defer cancel()
	cfg, hc, err := createConfig(spec)
	if err != nil {
		return "", fmt.Errorf("create %s on %s: %w", spec.Name, d.conn.Endpoint.Name, err)
	}
	var id string
	err = retryReobserving(ctx, func() error {
		resp, err := d.api.ContainerCreate(ctx, cfg, hc, nil, nil, spec.Name)
		id = resp.ID
		return err
	}, func() (bool, error) {
		c, ok, err := d.Inspect(ctx, spec.Name)
		if err != nil || !ok || !createdFrom(c, spec) {
			return false, err
		}
		id = c.ID
		return true, nil
	})
	if err != nil {
		return "", d.wrap("create "+spec.Name, err)
	}
	return id, nil
}

// createConfig is what Create asks the daemon for: spec and its options in
// the Docker API's types.
func createConfig(spec inventory.ContainerSpec) (*container.Config, *container.HostConfig, error) {
	stop := int(spec.StopTimeout / time.Second)
	cfg := &container.Config{Image: spec.Image, Env: spec.Env, Labels: spec.Labels, StopTimeout: &stop}
	hc := &container.HostConfig{
		NetworkMode:   "host",
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
	}
	if err := dockeropts.Apply(spec.Options, cfg, hc); err != nil {
		return nil, nil, err
	}
	return cfg, hc, nil
}

// createdFrom reports whether c is what creating spec makes: the same
// image and every label of spec (they name the version and the run).
func createdFrom(c inventory.Container, spec inventory.ContainerSpec) bool {
	if c.Image != spec.Image {
		return false
	}
	for k, v := range spec.Labels {
		if c.Labels[k] != v {
			return false
		}
	}
	return true
}

// Start starts a created container.
func (d *Docker) Start(ctx context.Context, id string) error {
	ctx, cancel := d.call(ctx)
	defer cancel()
	return d.wrap("start "+short(id), retry(ctx, func() error { return d.api.ContainerStart(ctx, id, container.StartOptions{}) }))
}

// Stop stops a container, giving it timeout to exit after SIGTERM.
func (d *Docker) Stop(ctx context.Context, id string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d.CallTimeout+timeout)
	defer cancel()
	secs := int(timeout / time.Second)
	return d.wrap("stop "+short(id), retry(ctx, func() error { return d.api.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}) }))
}

// Rename renames a container. When the connection breaks during the call,
// Rename looks whether the container already has the new name before
// trying again (renaming is not idempotent: a second try would fail).
func (d *Docker) Rename(ctx context.Context, id, name string) error {
	ctx, cancel := d.call(ctx)
	defer cancel()
	err := retryReobserving(ctx, func() error { return d.api.ContainerRename(ctx, id, name) }, func() (bool, error) {
		c, ok, err := d.Inspect(ctx, id)
		return ok && c.Name == name, err
	})
	return d.wrap("rename "+short(id)+" to "+name, err)
}

// Remove removes a container (forcefully if still running); its image stays
// cached.
func (d *Docker) Remove(ctx context.Context, id string) error {
	ctx, cancel := d.call(ctx)
	defer cancel()
	err := retry(ctx, func() error { return d.api.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}) })
	if errdefs.IsNotFound(err) {
		return nil
	}
	return d.wrap("remove "+short(id), err)
}

// ProbeHTTP makes one GET to http://addr+path from the host's side of the
// SSH connection and returns the status code, without following redirects.
func (d *Docker) ProbeHTTP(ctx context.Context, addr, path, hostHeader string, timeout time.Duration) (int, error) {
	return ProbeHTTP(ctx, d.conn, addr, path, hostHeader, timeout)
}

// ProbeTCP opens (and closes) a TCP connection to addr from the host's
// side of the SSH connection.
func (d *Docker) ProbeTCP(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := d.conn.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// execOutputMax is how much of a health command's output is kept.
const execOutputMax = 4 << 10

// ExecCheck runs cmd (an argv: no shell is involved) in the running
// container id, waits for it up to timeout, and returns its exit code and
// the last few KiB of its stdout and stderr: a health command.
func (d *Docker) ExecCheck(ctx context.Context, id string, cmd []string, timeout time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &tailBuffer{max: execOutputMax}
	code, err := d.Exec(ctx, id, ExecOptions{Cmd: cmd, Stdout: out, Stderr: out})
	if err != nil && ctx.Err() != nil {
		return 0, out.String(), fmt.Errorf("exec %q in %s: no exit within %s: %w", strings.Join(cmd, " "), short(id), timeout, ctx.Err())
	}
	return code, out.String(), err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// ProbeHTTP makes one GET to http://addr+path from the host's side of conn.
// Redirects are not followed: a 302 to a login page that answers 200 is a
// 302, not a healthy app. hostHeader, when set, is the Host header.
func ProbeHTTP(ctx context.Context, conn *Conn, addr, path, hostHeader string, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tr := &http.Transport{
		DialContext:       func(ctx context.Context, _, a string) (net.Conn, error) { return conn.DialContext(ctx, "tcp", a) },
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, err
	}
	if hostHeader != "" {
		req.Host = hostHeader
	}
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// RegistryAuth is a registry credential. It is never printed.
type RegistryAuth struct {
	Server   string
	Username string
	Password string
}

// encode returns the credential as the Docker API header wants it ("" for none).
func (a RegistryAuth) encode() (string, error) {
	if a.Username == "" {
		return "", nil
	}
	return registry.EncodeAuthConfig(registry.AuthConfig{Username: a.Username, Password: a.Password, ServerAddress: a.Server})
}

// String hides the password.
func (a RegistryAuth) String() string { return "RegistryAuth{" + a.Username + "@" + a.Server + "}" }

// DockerConfigAuth reads a credential for server from a Docker client
// config file (~/.docker/config.json "auths"), if one is stored there.
func DockerConfigAuth(data []byte, server string) (RegistryAuth, bool, error) {
	var f struct {
		Auths map[string]struct {
			Auth     string `json:"auth"`
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return RegistryAuth{}, false, err
	}
	for k, v := range f.Auths {
		host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://"), "/")
		if host != server {
			continue
		}
		if v.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(v.Auth)
			if err != nil {
				return RegistryAuth{}, false, errors.New("docker config: auth for " + server + " is not base64")
			}
			u, p, _ := strings.Cut(string(raw), ":")
			return RegistryAuth{Server: server, Username: u, Password: p}, true, nil
		}
		if v.Username != "" {
			return RegistryAuth{Server: server, Username: v.Username, Password: v.Password}, true, nil
		}
	}
	return RegistryAuth{}, false, nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// dataRootOf is the data root of the daemon that keeps a container, from
// the path of its hostname file (<root>/containers/<id>/hostname), or ""
// when that path does not say.
func dataRootOf(b *container.ContainerJSONBase) string {
	if b == nil || b.ID == "" {
		return ""
	}
	root, ok := strings.CutSuffix(b.HostnamePath, "/containers/"+b.ID+"/hostname")
	if !ok || !strings.HasPrefix(root, "/") {
		return ""
	}
	return root
}

// FreeDisk returns the Docker data root of the host and the bytes free on
// its filesystem (df over the SSH connection).
func (d *Docker) FreeDisk(ctx context.Context) (root string, free int64, err error) {
	cctx, cancel := d.call(ctx)
	defer cancel()
	var info system.Info
	err = retry(cctx, func() (err error) { info, err = d.api.Info(cctx); return err })
	if err != nil {
		return "", 0, d.wrap("info", err)
	}
	free, err = d.FreeDiskAt(ctx, info.DockerRootDir)
	return info.DockerRootDir, free, err
}

// FreeDiskAt returns the bytes free on the filesystem of root, the host's
// Docker data root when known already (Container.DataRoot): a daemon's
// info costs it far more than the df.
func (d *Docker) FreeDiskAt(ctx context.Context, root string) (free int64, err error) {
	cctx, cancel := d.call(ctx)
	defer cancel()
	out, err := d.conn.RunIdempotent(cctx, "df -Pk "+Quote(root), nil)
	if err != nil {
		return 0, fmt.Errorf("%s: df %s: %w", d.conn.Endpoint.Name, root, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	fields := strings.Fields(lines[len(lines)-1])
	if len(fields) < 4 {
		return 0, fmt.Errorf("%s: df %s: unexpected output %q", d.conn.Endpoint.Name, root, out)
	}
	var kb int64
	if _, err := fmt.Sscan(fields[3], &kb); err != nil {
		return 0, fmt.Errorf("%s: df %s: unexpected output %q", d.conn.Endpoint.Name, root, out)
	}
	return kb << 10, nil
}

// ImageInRegistry asks the registry, through the host's daemon, whether
// ref exists (the daemon's own registry settings apply).
func (d *Docker) ImageInRegistry(ctx context.Context, ref string, auth RegistryAuth) error {
	cctx, cancel := d.call(ctx)
	defer cancel()
	enc, err := auth.encode()
	if err != nil {
		return err
	}
	err = retry(cctx, func() error { _, err := d.api.DistributionInspect(cctx, ref, enc); return err })
	switch {
	case err == nil:
		return nil
	case errdefs.IsNotFound(err) || strings.Contains(err.Error(), "manifest unknown") || strings.Contains(err.Error(), "not found"):
		return fmt.Errorf("image %s not found in the registry (checked from %s): %w", ref, d.conn.Endpoint.Name, err)
	case errdefs.IsUnauthorized(err) || errdefs.IsForbidden(err):
		return fmt.Errorf("registry refused access to %s (checked from %s): check the registry credentials: %w", ref, d.conn.Endpoint.Name, err)
	}
	return fmt.Errorf("could not reach the registry for %s from %s: %w", ref, d.conn.Endpoint.Name, err)
}

// ListContainers returns every container on the host, running or not.
func (d *Docker) ListContainers(ctx context.Context) ([]inventory.Container, error) {
	ctx, cancel := d.call(ctx)
	defer cancel()
	var list []container.Summary
	err := retry(ctx, func() (err error) {
		list, err = d.api.ContainerList(ctx, container.ListOptions{All: true})
		return err
	})
	if err != nil {
		return nil, d.wrap("list containers", err)
	}
	out := make([]inventory.Container, 0, len(list))
	for _, c := range list {
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		ic := inventory.Container{ID: c.ID, Name: name, Image: c.Image, Running: c.State == "running", Restarting: c.State == "restarting", Labels: c.Labels, State: c.State}
		if c.State == "running" {
			// Summary has no start time; Status reads "Up 3 minutes". Ask.
			if full, ok, err := d.Inspect(ctx, c.ID); err == nil && ok {
				ic.StartedAt = full.StartedAt
			}
		}
		out = append(out, ic)
	}
	return out, nil
}

// ImageVersion is one cached image of a repository.
type ImageVersion struct {
	Tag     string
	Ref     string
	ID      string
	Created time.Time
}

// ListImageVersions returns the cached tags of repo (registry/path), newest first.
func (d *Docker) ListImageVersions(ctx context.Context, repo string) ([]ImageVersion, error) {
	ctx, cancel := d.call(ctx)
	defer cancel()
	var list []image.Summary
	err := retry(ctx, func() (err error) {
		list, err = d.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", repo))})
		return err
	})
	if err != nil {
		return nil, d.wrap("list images of "+repo, err)
	}
	var out []ImageVersion
	for _, im := range list {
		for _, rt := range im.RepoTags {
			// Any tag may turn up (other repositories, "<none>:<none>"):
			// only repo:TAG counts, checked before any slicing.
			tag, ok := strings.CutPrefix(rt, repo+":")
			if !ok || tag == "" || strings.ContainsAny(tag, ":/@") {
				continue
			}
			out = append(out, ImageVersion{Tag: tag, Ref: rt, ID: im.ID, Created: time.Unix(im.Created, 0)})
		}
	}
	// The list gives whole seconds: images built within one second would
	// tie, so ties are settled by each image's exact creation time.
	seconds := map[int64]int{}
	for _, v := range out {
		seconds[v.Created.Unix()]++
	}
	for i, v := range out {
		if seconds[v.Created.Unix()] < 2 {
			continue
		}
		var info image.InspectResponse
		if err := retry(ctx, func() (err error) { info, err = d.api.ImageInspect(ctx, v.ID); return err }); err != nil {
			return nil, d.wrap("inspect image "+v.Ref, err)
		}
		if t, err := time.Parse(time.RFC3339Nano, info.Created); err == nil {
			out[i].Created = t
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// RemoveImage untags ref and deletes its layers when nothing else uses them.
// An image in use by a container is not removed.
func (d *Docker) RemoveImage(ctx context.Context, ref string) error {
	ctx, cancel := d.call(ctx)
	defer cancel()
	err := retry(ctx, func() error {
		_, err := d.api.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
		return err
	})
	if errdefs.IsNotFound(err) {
		return nil
	}
	return d.wrap("remove image "+ref, err)
}
