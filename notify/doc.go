// Package notify tells the world outside the fleet about a run: webhooks
// (a Slack-compatible JSON POST on start and end of each deploy and
// rollback) and hooks (local commands run before and after, given the run
// in environment variables).
//
// Webhook URLs are secrets: they are never printed or logged, and errors
// name a webhook by its number and host only. A failing webhook never
// fails a run: the caller gets a warning.
package notify
