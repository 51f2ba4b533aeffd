package console

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimsync/scimsync/internal/secret"
)

// A secret a form makes (a SCIM token, a webhook's signing secret) is
// shown once, on the page the form's POST redirects to: the POST keeps it
// next to the session, and that page's GET takes it. A reload resends no
// form and finds nothing; the secret is never in an address.

// flashTTL bounds how long a secret waits for its page.
const flashTTL = 2 * time.Minute

// flashed is a secret waiting for its page.
type flashed struct {
	Secret string `json:"secret"`
	// For names what the secret belongs to (a webhook's URL) on a page
	// listing several.
	For string `json:"for,omitempty"`
}

// flashBox is the box a session's waiting secrets are sealed in: its key
// is derived from the session id, which Redis holds only as a hash.
func flashBox(sessionID string) (*secret.Box, error) {
	key := sha256.Sum256([]byte("scimsync console flash\x00" + sessionID))
	return secret.NewBox(key[:])
}

// flashKey holds a session's waiting secrets, one field per page path.
func flashKey(s session) string { return s.key + ":flash" }

// redirectWithSecret keeps f for the page at path and redirects there.
func (c *Console) redirectWithSecret(w http.ResponseWriter, r *http.Request, s session, path string, f flashed) {
	ctx := r.Context()
	b, err := json.Marshal(f)
	if err == nil {
		pipe := c.Redis.TxPipeline()
		pipe.HSet(ctx, flashKey(s), path, s.box.Seal(b, []byte(path)))
		pipe.Expire(ctx, flashKey(s), flashTTL)
		_, err = pipe.Exec(ctx)
	}
	if err != nil {
		c.failed(w, r, fmt.Errorf("keep a new secret for its page: %w", err))
		return
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// takeSecret returns the secret kept for the requested page, if any, and
// forgets it: it is shown by one answer only.
func (c *Console) takeSecret(r *http.Request, s session) (*flashed, error) {
	ctx := r.Context()
	path := r.URL.EscapedPath()
	pipe := c.Redis.TxPipeline()
	get := pipe.HGet(ctx, flashKey(s), path)
	pipe.HDel(ctx, flashKey(s), path)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("take a new secret: %w", err)
	}
	b, err := get.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("take a new secret: %w", err)
	}
	if b, err = s.box.Open(b, []byte(path)); err != nil {
		return nil, fmt.Errorf("open a new secret: %w", err)
	}
	var f flashed
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("read a new secret: %w", err)
	}
	return &f, nil
}
