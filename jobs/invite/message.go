package invite

import (
	htmltemplate "html/template"
	"net/url"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/scimsync/scimsync/jobs/mail"
	"github.com/scimsync/scimsync/store"
)

// AcceptPath is where invite links point.
const AcceptPath = "/invite/accept"

// Link is the accept link for a token.
func Link(publicURL, token string) string {
	return strings.TrimRight(publicURL, "/") + AcceptPath + "?token=" + url.QueryEscape(token)
}

type messageData struct {
	Org       string
	FirstName string
	Link      string
	Expires   string
}

var (
	textBody = texttemplate.Must(texttemplate.New("text").Parse(`Hello{{with .FirstName}} {{.}}{{end}},

{{.Org}} has added you as a member. To finish setting up your account, open this link:

{{.Link}}

The link works once and expires on {{.Expires}}.
If you did not expect this e-mail, you can ignore it.
`))
	htmlBody = htmltemplate.Must(htmltemplate.New("html").Parse(`<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5">
<p>Hello{{with .FirstName}} {{.}}{{end}},</p>
<p>{{.Org}} has added you as a member. To finish setting up your account, open this link:</p>
<p><a href="{{.Link}}" style="display:inline-block;padding:10px 18px;background:#1f6feb;color:#fff;text-decoration:none;border-radius:6px">Finish setup</a></p>
<p style="font-size:small;color:#555">Or paste this address into your browser: {{.Link}}<br>
The link works once and expires on {{.Expires}}. If you did not expect this e-mail, you can ignore it.</p>
</body></html>
`))
)

// render builds an invite e-mail. The templates escape what the IdP
// supplies (names, organization name) for each body's syntax.
func render(publicURL, token string, inv store.InviteToSend, expires time.Time) (mail.Message, error) {
	d := messageData{Org: inv.OrgName, FirstName: inv.MemberFirstName, Link: Link(publicURL, token), Expires: expires.UTC().Format("2 January 2006 15:04 MST")}
	var text, html strings.Builder
	if err := textBody.Execute(&text, d); err != nil {
		return mail.Message{}, err
	}
	if err := htmlBody.Execute(&html, d); err != nil {
		return mail.Message{}, err
	}
	subject := "You're invited to join " + strings.Join(strings.Fields(inv.OrgName), " ") // one line, whatever the name holds
	return mail.Message{To: inv.MemberEmail, Subject: subject, Text: text.String(), HTML: html.String()}, nil
}
