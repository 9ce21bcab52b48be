package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/internal/panics"
)

// Run is one deploy or rollback, as webhooks and hooks see it.
type Run struct {
	// Kind is deploy or rollback.
	Kind string
	// Event is started, or how the run ended (a rollout.RunOutcome).
	Event   string
	Env     string
	Service string
	// Version is the target tag (for a rollback, the versions gone back to).
	Version string
	Image   string
	// Who is user@machine of the deployer.
	Who         string
	Hosts       []string
	FailedHosts []string
	Duration    time.Duration
	// Message is the operator's --message, if any.
	Message string
	// Release says how the release command ended, in one line (never
	// its output); "" when there was none.
	Release string
	// Canary says how the canary stage ended, with its figures; "" when
	// there was none.
	Canary string
}

// Webhook is one endpoint to notify.
type Webhook struct {
	// Name identifies the webhook in warnings without giving its URL away:
	// "webhook 1 (hooks.slack.com)".
	Name    string
	URL     string
	Events  []string
	Timeout time.Duration
}

// NewWebhook names the index-th (0-based) webhook of an environment.
func NewWebhook(index int, rawURL string, events []string, timeout time.Duration) Webhook {
	name := fmt.Sprintf("webhook %d", index+1)
	if u, err := url.Parse(rawURL); err == nil && u.Host != "" {
		name += " (" + u.Hostname() + ")"
	}
	return Webhook{Name: name, URL: rawURL, Events: events, Timeout: timeout}
}

// Payload is the JSON body sent: Slack's "text" and "attachments" (which
// Slack renders), and the same facts under "gantry" for other receivers.
type Payload struct {
	Text        string       `json:"text"`
	Attachments []Attachment `json:"attachments"`
	Gantry      Fields       `json:"gantry"`
}

// Attachment is a Slack message attachment.
type Attachment struct {
	Color  string  `json:"color"`
	Fields []Field `json:"fields"`
}

// Field is one fact in a Slack attachment.
type Field struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// Fields are the run's facts in machine-readable form.
type Fields struct {
	Event       string   `json:"event"`
	Kind        string   `json:"kind"`
	Env         string   `json:"env"`
	Service     string   `json:"service"`
	Version     string   `json:"version"`
	Image       string   `json:"image"`
	Who         string   `json:"who"`
	DurationS   float64  `json:"duration_s"`
	Hosts       []string `json:"hosts"`
	FailedHosts []string `json:"failed_hosts"`
	Message     string   `json:"message,omitempty"`
	Release     string   `json:"release,omitempty"`
	Canary      string   `json:"canary,omitempty"`
}

// PayloadOf builds the body sent for run.
func PayloadOf(run Run) Payload {
	what := fmt.Sprintf("%s of %s@%s to %s", run.Kind, run.Service, run.Version, run.Env)
	failed := strings.Join(run.FailedHosts, ", ")
	var text, color string
	switch run.Event {
	case "started":
		text, color = fmt.Sprintf(":rocket: %s started by %s (%d hosts)", what, run.Who, len(run.Hosts)), "#439FE0"
	case "succeeded":
		text, color = fmt.Sprintf(":white_check_mark: %s succeeded in %.1fs (%d hosts)", what, run.Duration.Seconds(), len(run.Hosts)), "good"
	case "reverted":
		text, color = fmt.Sprintf(":warning: %s failed on %s and was reverted: every host is back on the version it ran before", what, failed), "warning"
	case "failed":
		text, color = fmt.Sprintf(":x: %s failed on %s and halted: hosts run mixed versions", what, failed), "danger"
	case "revert-failed":
		text, color = fmt.Sprintf(":rotating_light: %s failed on %s AND putting hosts back failed: see gantry's report", what, failed), "danger"
	case "interrupted":
		text, color = fmt.Sprintf(":octagonal_sign: %s was interrupted after %.1fs", what, run.Duration.Seconds()), "warning"
	default:
		text, color = fmt.Sprintf("%s: %s", what, run.Event), "#cccccc"
	}
	if run.Event == "reverted" && strings.HasPrefix(run.Canary, "canary failed") {
		text = fmt.Sprintf(":warning: %s stopped at the canary and was reverted: %s", what, run.Canary)
	}
	if run.Event == "failed" && strings.HasPrefix(run.Release, "release command failed") {
		text = fmt.Sprintf(":x: %s stopped: %s; nothing else was changed", what, run.Release)
	}
	fields := []Field{
		{Title: "Service", Value: run.Service, Short: true},
		{Title: "Version", Value: run.Version, Short: true},
		{Title: "Environment", Value: run.Env, Short: true},
		{Title: "Who", Value: run.Who, Short: true},
	}
	if run.Event != "started" {
		fields = append(fields, Field{Title: "Duration", Value: fmt.Sprintf("%.1fs", run.Duration.Seconds()), Short: true})
	}
	if failed != "" {
		fields = append(fields, Field{Title: "Failed hosts", Value: failed, Short: false})
	}
	if run.Message != "" {
		fields = append(fields, Field{Title: "Message", Value: run.Message, Short: false})
	}
	if run.Release != "" {
		fields = append(fields, Field{Title: "Release", Value: run.Release, Short: false})
	}
	if run.Canary != "" {
		fields = append(fields, Field{Title: "Canary", Value: run.Canary, Short: false})
	}
	return Payload{
		Text:        text,
		Attachments: []Attachment{{Color: color, Fields: fields}},
		Gantry: Fields{
			Event: run.Event, Kind: run.Kind, Env: run.Env, Service: run.Service, Version: run.Version, Image: run.Image,
			Who: run.Who, DurationS: run.Duration.Seconds(), Hosts: nonNil(run.Hosts), FailedHosts: nonNil(run.FailedHosts), Message: run.Message, Release: run.Release, Canary: run.Canary,
		},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Send POSTs run's payload to w. Errors never contain the URL.
func Send(ctx context.Context, client *http.Client, w Webhook, run Run) error {
	body, err := json.Marshal(PayloadOf(run))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: bad URL", w.Name)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gantry")
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error carries the URL; keep only its cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("%s: %s", w.Name, strings.ReplaceAll(err.Error(), w.URL, "***"))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: answered %s", w.Name, resp.Status)
	}
	return nil
}

// Notifier sends runs to an environment's webhooks in the background, so
// a slow receiver never holds up a deploy.
type Notifier struct {
	Webhooks []Webhook
	Client   *http.Client
	// Warn receives each failure to notify.
	Warn func(string)

	wg sync.WaitGroup
}

// Notify sends run to every webhook that wants its event, without waiting.
// The sends survive cancellation of ctx (an interrupt must still be told),
// bounded by each webhook's timeout.
func (n *Notifier) Notify(ctx context.Context, run Run) {
	if n == nil {
		return
	}
	client := n.Client
	if client == nil {
		client = http.DefaultClient
	}
	ctx = context.WithoutCancel(ctx)
	for _, w := range n.Webhooks {
		if !slices.Contains(w.Events, run.Event) {
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer panics.Recover(func(err error) {
				if n.Warn != nil {
					n.Warn(fmt.Sprintf("notification %q not delivered: %v (the %s goes on regardless)", run.Event, err, run.Kind))
				}
			})
			if err := Send(ctx, client, w, run); err != nil && n.Warn != nil {
				n.Warn(fmt.Sprintf("notification %q not delivered: %v (the %s goes on regardless)", run.Event, err, run.Kind))
			}
		}()
	}
}

// Wait waits for every notification in flight.
func (n *Notifier) Wait() {
	if n != nil {
		n.wg.Wait()
	}
}

// HookEnv is the environment a hook command gets on top of gantry's own.
func HookEnv(run Run) []string {
	env := []string{
		"GANTRY_KIND=" + run.Kind,
		"GANTRY_ENV=" + run.Env,
		"GANTRY_SERVICE=" + run.Service,
		"GANTRY_VERSION=" + run.Version,
		"GANTRY_IMAGE=" + run.Image,
		"GANTRY_WHO=" + run.Who,
		"GANTRY_HOSTS=" + strings.Join(run.Hosts, " "),
	}
	if run.Event != "started" {
		env = append(env,
			"GANTRY_OUTCOME="+run.Event,
			"GANTRY_FAILED_HOSTS="+strings.Join(run.FailedHosts, " "),
			fmt.Sprintf("GANTRY_DURATION_S=%.3f", run.Duration.Seconds()),
		)
	}
	return env
}

// RunHook runs command with sh -c on this machine, with the run in its
// environment (HookEnv) and its output sent to out. It fails if the
// command exits non-zero or runs longer than timeout.
func RunHook(ctx context.Context, what, command string, run Run, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Env = append(os.Environ(), HookEnv(run)...)
	// Whole lines only, and the last one ended: out may be shared with
	// other writers (notes, warnings) that must not run into the hook's.
	lines := &lineBuffer{w: out}
	defer lines.flush()
	cmd.Stdout = lines
	cmd.Stderr = lines
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("%s hook did not finish within %s", what, timeout)
		}
		return fmt.Errorf("%s hook %q: %w", what, command, err)
	}
	return nil
}

// lineBuffer passes on whole lines; flush ends and passes on the rest.
type lineBuffer struct {
	w   io.Writer
	mu  sync.Mutex
	buf []byte
}

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if i := bytes.LastIndexByte(l.buf, '\n'); i >= 0 {
		if _, err := l.w.Write(l.buf[:i+1]); err != nil {
			return 0, err
		}
		l.buf = append(l.buf[:0], l.buf[i+1:]...)
	}
	return len(p), nil
}

func (l *lineBuffer) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		_, _ = l.w.Write(append(l.buf, '\n'))
		l.buf = nil
	}
}
