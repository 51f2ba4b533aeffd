package invite

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/scimsync/scimsync/internal/httpjson"
)

// Accepter finishes a member's setup from an invite token.
type Accepter interface {
	Accept(ctx context.Context, token string) (Accepted, error)
}

// Routes registers the public accept endpoints on mux:
//
//	POST /api/v1/invites/accept  {"token": "…"}, for programs
//	GET  /invite/accept?token=…  the e-mail's link: a page with a button
//	POST /invite/accept          that button (a form post)
//
// The token is their only credential. GET changes nothing, so link
// scanners that fetch the link do not use it up. No handler logs the token
// or a URL that contains it. Every refusal of a token gets the same 404.
func Routes(mux *http.ServeMux, a Accepter, log *slog.Logger) {
	h := &handler{a: a, log: log}
	mux.HandleFunc("POST /api/v1/invites/accept", h.acceptJSON)
	mux.HandleFunc("GET "+AcceptPath, h.page)
	mux.HandleFunc("POST "+AcceptPath, h.acceptForm)
}

type handler struct {
	a   Accepter
	log *slog.Logger
}

const invalidMessage = "This invite link is not valid. It may have expired, been used already, or been replaced by a newer invite."

func (h *handler) acceptJSON(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token string `json:"token"`
	}
	if err := httpjson.Decode(w, r, &body); err != nil {
		if errors.Is(err, httpjson.ErrTooLarge) {
			httpjson.Error(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
			return
		}
		httpjson.Error(w, http.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	if body.Token == "" {
		httpjson.Error(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	}
	acc, err := h.a.Accept(r.Context(), body.Token)
	switch {
	case errors.Is(err, ErrInvalid):
		httpjson.Error(w, http.StatusNotFound, "invite_invalid", invalidMessage)
	case err != nil:
		h.log.ErrorContext(r.Context(), "accept invite", "err", err)
		httpjson.Error(w, http.StatusInternalServerError, "internal", "internal error")
	default:
		httpjson.Write(w, http.StatusOK, "", acc)
	}
}

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	if token == "" {
		writePage(w, http.StatusBadRequest, pageData{Title: "Invite link incomplete", Message: "The link has no token. Open the link from your invite e-mail in full."})
		return
	}
	writePage(w, http.StatusOK, pageData{Title: "Finish your account setup", Message: "Confirm to join the organization that invited you.", Token: token})
}

func (h *handler) acceptForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, httpjson.MaxBody)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writePage(w, http.StatusRequestEntityTooLarge, pageData{Title: "Request too large", Message: "The request is larger than 1 MiB."})
			return
		}
		writePage(w, http.StatusBadRequest, pageData{Title: "Bad request", Message: "The form could not be read."})
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		writePage(w, http.StatusBadRequest, pageData{Title: "Invite link incomplete", Message: "The form has no token. Open the link from your invite e-mail in full."})
		return
	}
	_, err := h.a.Accept(r.Context(), token)
	switch {
	case errors.Is(err, ErrInvalid):
		writePage(w, http.StatusNotFound, pageData{Title: "Invite link not valid", Message: invalidMessage + " Ask your administrator for a new one."})
	case err != nil:
		h.log.ErrorContext(r.Context(), "accept invite", "err", err)
		writePage(w, http.StatusInternalServerError, pageData{Title: "Something went wrong", Message: "Please try again in a moment."})
	default:
		writePage(w, http.StatusOK, pageData{Title: "You're all set", Message: "Your account setup is complete. You can close this page."})
	}
}

type pageData struct {
	Title, Message string
	// Token, when set, shows the confirm button.
	Token string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{{.Title}}</title>
<style>body{font-family:sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5}
button{padding:.6rem 1.2rem;font-size:1rem;background:#1f6feb;color:#fff;border:0;border-radius:6px;cursor:pointer}</style>
</head><body>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .Token}}<form method="post" action="` + AcceptPath + `">
<input type="hidden" name="token" value="{{.Token}}">
<button type="submit">Accept invite</button>
</form>{{end}}
</body></html>
`))

func writePage(w http.ResponseWriter, status int, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// The page's URL holds the token: never send it on as a Referer, and
	// keep the page out of frames and away from scripts.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, d)
}
