package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/scimsync/scimsync/store"
)

// view is what every page gets: the layout's parts and the page's Data.
type view struct {
	Title string
	// CSRF is the token every form of the page carries.
	CSRF       string
	SignedIn   bool
	Error      string
	Notice     string
	Org        *store.Org
	Tab        string
	Monitoring string
	// Refresh reloads the page after this many seconds (a run in flight).
	Refresh int
	Data    any
}

// pageNames are the templates/*.html files other than the layout and
// the partials every page may use.
var pageNames = []string{"signin", "error", "orgs", "org", "ask", "connector", "members", "groups", "runs", "run", "confirm", "audit", "webhooks", "webhook", "events", "settle"}

var funcs = template.FuncMap{
	"when":    when,
	"percent": func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
	// share is part of whole as a percentage.
	"share": func(part, whole int) string {
		if whole == 0 {
			return "0%"
		}
		return fmt.Sprintf("%.0f%%", float64(part)*100/float64(whole))
	},
	"pretty": func(s string) string {
		var b bytes.Buffer
		if json.Indent(&b, []byte(s), "", "  ") != nil {
			return s
		}
		return b.String()
	},
}

// when shows a time in UTC to the minute, "—" for none.
func when(t any) string {
	switch t := t.(type) {
	case time.Time:
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	case *time.Time:
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	}
	return fmt.Sprint(t)
}

// question is a page asking to confirm one irreversible action.
type question struct {
	Heading, Body, Detail string
	// Action is where the confirming form posts; Button and ButtonID
	// label its button; Cancel is where the other way leads.
	Action, Button, ButtonID, Cancel string
}

// ask shows q on the page of org (nil for none) under tab.
func (c *Console) ask(w http.ResponseWriter, r *http.Request, s session, org *store.Org, tab string, q question) {
	c.render(w, r, http.StatusOK, "ask", view{Title: q.Heading, CSRF: s.CSRF, Org: org, Tab: tab, Data: q})
}

func parsePages() map[string]*template.Template {
	out := make(map[string]*template.Template, len(pageNames))
	for _, n := range pageNames {
		out[n] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+n+".html"))
	}
	return out
}

// render writes a page; the whole page is rendered before the status goes
// out, so a template error is a clean 500.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	v.Monitoring = c.MonitoringPath
	if v.CSRF == "" {
		if s, err := c.session(r); err == nil {
			v.CSRF, v.SignedIn = s.CSRF, true
		}
	} else if page != "signin" {
		v.SignedIn = true
	}
	var buf bytes.Buffer
	if err := c.pages[page].Execute(&buf, v); err != nil {
		c.Log.ErrorContext(r.Context(), "console: render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
