package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/scimsync/scimsync/store"
)

const (
	webhookListenUsage = "webhook listen --secret whsec_… [--addr 127.0.0.1:8787] [--json]"
	webhookSecretEnv   = "SCIMSYNC_WEBHOOK_SECRET"
	maxWebhookBody     = 1 << 20
)

// webhookCmd is a reference receiver of webhook deliveries: it verifies
// each one and prints its event.
func webhookCmd(ctx context.Context, args []string, out, errOut io.Writer, getenv env) error {
	_, rest, err := subcommand(args, "listen")
	if err != nil {
		fmt.Fprintln(errOut, "Usage: scimsync "+webhookListenUsage)
		return err
	}
	fs := newFlagSet("webhook listen", webhookListenUsage, errOut)
	// The secret's default is not shown by --help, so it is read after parsing.
	secret := fs.String("secret", "", "the webhook's signing secret, whsec_… ($"+webhookSecretEnv+")")
	addr := fs.String("addr", "127.0.0.1:8787", "listen address (port 0: any free port, logged)")
	asJSON := fs.Bool("json", false, "print each event as its JSON, one a line")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if *secret == "" {
		*secret = strings.TrimSpace(getenv(webhookSecretEnv))
	}
	if *secret == "" {
		return usageError{"--secret or $" + webhookSecretEnv + " is required"}
	}
	wh, err := standardwebhooks.NewWebhook(*secret)
	if err != nil {
		// The library's message does not quote the secret.
		return usageError{"the secret is not whsec_ followed by base64: " + err.Error()}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log := newLogger(errOut, slog.LevelInfo)
	rcv := &receiver{wh: wh, out: out, log: log, json: *asJSON, seen: map[string]bool{}}
	srv := &http.Server{Handler: rcv, ReadHeaderTimeout: 10 * time.Second}
	log.Info("listening", "addr", ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// receiver verifies deliveries, drops repeats of a webhook-id seen in this
// run (delivery is at least once) and prints the rest.
type receiver struct {
	wh   *standardwebhooks.Webhook
	out  io.Writer
	log  *slog.Logger
	json bool

	mu   sync.Mutex // guards seen and serialises out
	seen map[string]bool
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		rc.reject(w, r, http.StatusMethodNotAllowed, "not a POST")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		rc.reject(w, r, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	if err := rc.wh.Verify(body, r.Header); err != nil {
		code := http.StatusUnauthorized
		if errors.Is(err, standardwebhooks.ErrRequiredHeaders) || errors.Is(err, standardwebhooks.ErrInvalidHeaders) {
			code = http.StatusBadRequest
		}
		rc.reject(w, r, code, err.Error())
		return
	}
	var ev store.EventView
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.reject(w, r, http.StatusBadRequest, "body is not an event: "+err.Error())
		return
	}
	if ev.Type == "" || ev.OrgID == "" {
		rc.reject(w, r, http.StatusBadRequest, "body is not an event: no type or orgId")
		return
	}
	id := r.Header.Get(standardwebhooks.HeaderWebhookID)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.seen[id] {
		rc.log.Info("duplicate delivery, ignored", "webhook_id", id, "sequence", ev.Sequence, "type", ev.Type)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	rc.seen[id] = true
	if rc.json {
		var line bytes.Buffer
		_ = json.Compact(&line, body) // valid: it was just decoded
		line.WriteByte('\n')
		rc.out.Write(line.Bytes())
	} else {
		fmt.Fprintf(rc.out, "%d\t%s\t%s\t%s\n", ev.Sequence, ev.Type, ev.OrgID, summarize(ev))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) reject(w http.ResponseWriter, r *http.Request, code int, why string) {
	rc.log.Warn("delivery rejected", "status", code, "reason", why,
		"webhook_id", r.Header.Get(standardwebhooks.HeaderWebhookID), "remote", r.RemoteAddr)
	http.Error(w, why, code)
}

// summarize names the event's entity: a member's e-mail and status, a
// group's name, a run's id and status.
func summarize(ev store.EventView) string {
	kind, _, _ := strings.Cut(ev.Type, ".")
	switch {
	case kind == "member":
		var m store.Membership
		if json.Unmarshal(ev.Data, &m) == nil {
			return m.Email + " " + m.Status
		}
	case ev.Type == "group.member_added" || ev.Type == "group.member_removed":
		var c store.GroupMemberChange
		if json.Unmarshal(ev.Data, &c) == nil {
			return fmt.Sprintf("%q %s", c.Group.Name, c.Member.Email)
		}
	case kind == "group":
		var g store.GroupView
		if json.Unmarshal(ev.Data, &g) == nil {
			return fmt.Sprintf("%q (%d members)", g.Name, g.MemberCount)
		}
	case kind == "sync_run":
		var run store.SyncRunView
		if json.Unmarshal(ev.Data, &run) == nil {
			return "run " + run.ID + " " + run.Status
		}
	}
	var b bytes.Buffer
	if json.Compact(&b, ev.Data) != nil {
		return ""
	}
	return b.String()
}
