// Package mail sends e-mail over SMTP and says what a failed send means
// for a retry: not sent (retry), rejected (do not retry), or handed over
// with the server's answer lost (it may have been delivered: do not retry
// if a duplicate is worse than a loss).
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	netmail "net/mail"
	"net/url"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one e-mail with a plain-text and an HTML body.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// Sender sends messages. A nil error means the server accepted the
// message. Other errors wrap ErrRejected or ErrUncertain, or else mean that
// the message was not handed over and a retry may send it.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

var (
	// ErrRejected: the server refused the message for good (a 5xx reply),
	// or the recipient address is not valid.
	ErrRejected = errors.New("mail rejected")
	// ErrUncertain: the connection failed after the message's data was
	// complete and before the server answered; it may have been delivered.
	ErrUncertain = errors.New("mail delivery uncertain")
)

// SMTP sends through one SMTP server, as SMTP_URL names it:
//
//	smtp://[user:pass@]host[:port]   STARTTLS when the server offers it (port 587 by default)
//	smtps://[user:pass@]host[:port]  TLS from the first byte (port 465 by default)
//
// With a user, it authenticates, and only over an encrypted connection:
// the mechanisms it would use on plain text (PLAIN, LOGIN) are refused.
type SMTP struct {
	host        string
	port        int
	implicitTLS bool
	user, pass  string
	from        string
	tls         *tls.Config
	timeout     time.Duration
}

// Option adjusts an SMTP sender.
type Option func(*SMTP)

// WithTLSConfig sets the TLS settings (for a private CA, say). Its
// ServerName defaults to the SMTP host.
func WithTLSConfig(c *tls.Config) Option { return func(s *SMTP) { s.tls = c.Clone() } }

// WithTimeout bounds each network step (default 30s).
func WithTimeout(d time.Duration) Option { return func(s *SMTP) { s.timeout = d } }

// NewSMTP parses rawURL and the sender address from. Its errors never
// repeat the URL, which may hold a password.
func NewSMTP(rawURL, from string, opts ...Option) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" || (u.Scheme != "smtp" && u.Scheme != "smtps") {
		return nil, errors.New("SMTP_URL: must look like smtp://user:pass@host:port or smtps://…")
	}
	if _, err := netmail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("mail sender %q: %w", from, err)
	}
	s := &SMTP{host: u.Hostname(), implicitTLS: u.Scheme == "smtps", from: from, timeout: 30 * time.Second, port: 587}
	if s.implicitTLS {
		s.port = 465
	}
	if p := u.Port(); p != "" {
		if s.port, err = strconv.Atoi(p); err != nil || s.port <= 0 || s.port > 65535 {
			return nil, errors.New("SMTP_URL: bad port")
		}
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	for _, o := range opts {
		o(s)
	}
	if s.tls == nil {
		s.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if s.tls.ServerName == "" {
		s.tls.ServerName = s.host
	}
	return s, nil
}

// Send delivers m in one SMTP session.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return fmt.Errorf("smtp: sender address: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("smtp: recipient address: %w", ErrRejected)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	// Keep out-of-office replies away from a no-reply sender.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)

	c, err := gomail.NewClient(s.host, s.clientOptions()...)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	conn, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fmt.Errorf("smtp: connect to %s:%d: %w", s.host, s.port, err)
	}
	// The session is bounded by per-step timeouts; ending the connection
	// when ctx ends makes it honour cancellation too.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	err = c.SendWithSMTPClient(conn, msg)
	_ = c.CloseWithSMTPClient(conn) // the outcome is known; a failed QUIT changes nothing
	if msg.IsDelivered() {
		return nil
	}
	return classify(err)
}

func (s *SMTP) clientOptions() []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(s.port),
		gomail.WithTimeout(s.timeout),
		gomail.WithTLSConfig(s.tls),
	}
	if s.implicitTLS {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if s.user != "" {
		// Auto-discovery picks the strongest mechanism the server offers
		// and never a plain-text one on an unencrypted connection.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.user), gomail.WithPassword(s.pass))
	}
	return opts
}

// classify maps a failed send to the package's errors. Only two cases stop
// retries: a permanent (5xx) reply, and a connection lost while the server
// was answering the end of the data, when the message may have gone out.
func classify(err error) error {
	var se *gomail.SendError
	if errors.As(err, &se) {
		switch {
		case se.ErrorCode() >= 500:
			return fmt.Errorf("smtp: %w: %w", ErrRejected, err)
		case se.Reason == gomail.ErrSMTPDataClose && se.ErrorCode() == 0:
			return fmt.Errorf("smtp: %w: %w", ErrUncertain, err)
		}
	}
	return fmt.Errorf("smtp: %w", err)
}
