package mail_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/jobs/mail"
	"github.com/scimsync/scimsync/jobs/mail/mailtest"
)

var msg = mail.Message{To: "ada@example.com", Subject: "Hello ✓", Text: "plain body https://app.test/x?token=abc", HTML: "<p>html body</p>"}

func TestSendPaths(t *testing.T) {
	tests := []struct {
		name     string
		opts     mailtest.Options
		wantTLS  bool
		wantAuth bool
	}{
		{"plain", mailtest.Options{}, false, false},
		{"starttls", mailtest.Options{StartTLS: true}, true, false},
		{"starttls and auth", mailtest.Options{StartTLS: true, User: "app", Password: "s3cret"}, true, true},
		{"implicit tls and auth", mailtest.Options{Implicit: true, User: "app", Password: "s3cret"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.Start(t, tt.opts)
			s, err := mail.NewSMTP(srv.URL(), "scimsync <no-reply@example.com>", mail.WithTLSConfig(srv.ClientTLS()), mail.WithTimeout(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(context.Background(), msg); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := srv.Messages()
			if len(got) != 1 {
				t.Fatalf("server got %d messages, want 1", len(got))
			}
			m := got[0]
			if diff := cmp.Diff([]string{"ada@example.com"}, m.To); diff != "" {
				t.Errorf("recipients (-want +got):\n%s", diff)
			}
			if m.From != "no-reply@example.com" || m.TLS != tt.wantTLS || m.Authenticated != tt.wantAuth {
				t.Errorf("from %q tls %v auth %v; want tls %v auth %v", m.From, m.TLS, m.Authenticated, tt.wantTLS, tt.wantAuth)
			}
			text, err := m.TextBody()
			if err != nil || !strings.Contains(text, msg.Text) {
				t.Errorf("text body %q, %v", text, err)
			}
			html, err := m.HTMLBody()
			if err != nil || !strings.Contains(html, msg.HTML) {
				t.Errorf("html body %q, %v", html, err)
			}
			if subj, _ := m.Header("Subject"); subj != msg.Subject {
				t.Errorf("subject %q", subj)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name      string
		failure   mailtest.Failure
		wantErr   error // nil: neither ErrRejected nor ErrUncertain (retry)
		retryable bool
	}{
		{"4xx is retried", mailtest.Failure{Reply: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}}, nil, true},
		{"5xx is final", mailtest.Failure{Reply: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}}, mail.ErrRejected, false},
		{"dropped after data is uncertain", mailtest.Failure{Drop: true}, mail.ErrUncertain, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.Start(t, mailtest.Options{})
			srv.FailNext(tt.failure)
			s, err := mail.NewSMTP(srv.URL(), "no-reply@example.com", mail.WithTimeout(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), msg)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			final := errors.Is(err, mail.ErrRejected) || errors.Is(err, mail.ErrUncertain)
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) || final == tt.retryable {
				t.Errorf("Send error %v; want %v (retryable %v)", err, tt.wantErr, tt.retryable)
			}
			// The failure was one-off: the next send goes through.
			if err := s.Send(context.Background(), msg); err != nil {
				t.Errorf("second Send: %v", err)
			}
		})
	}
}

func TestUnreachableServerIsRetryable(t *testing.T) {
	s, err := mail.NewSMTP("smtp://127.0.0.1:1", "no-reply@example.com", mail.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), msg)
	if err == nil || errors.Is(err, mail.ErrRejected) || errors.Is(err, mail.ErrUncertain) {
		t.Errorf("Send to a closed port = %v, want a retryable error", err)
	}
}

func TestNoPasswordOverPlainText(t *testing.T) {
	// The server offers no TLS; the sender must not authenticate in clear.
	srv := mailtest.Start(t, mailtest.Options{User: "app", Password: "s3cret"})
	s, err := mail.NewSMTP(srv.URL(), "no-reply@example.com", mail.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), msg)
	if err == nil || len(srv.Messages()) != 0 {
		t.Fatalf("Send over plain text with credentials = %v, messages %d; want a refusal", err, len(srv.Messages()))
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestUntrustedCertificateFails(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{StartTLS: true})
	s, err := mail.NewSMTP(srv.URL(), "no-reply@example.com", mail.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), msg); err == nil {
		t.Error("Send trusted a self-signed certificate")
	}
}

func TestNewSMTP(t *testing.T) {
	for _, tt := range []struct {
		url, from string
		ok        bool
	}{
		{"smtp://user:pass@mail.example.com:587", "a@example.com", true},
		{"smtps://mail.example.com", "Name <a@example.com>", true},
		{"http://mail.example.com", "a@example.com", false},
		{"smtp://", "a@example.com", false},
		{"smtp://user:secretpw@mail.example.com:99999", "a@example.com", false},
		{"smtp://mail.example.com", "not an address", false},
	} {
		_, err := mail.NewSMTP(tt.url, tt.from)
		if (err == nil) != tt.ok {
			t.Errorf("NewSMTP(%q, %q) = %v, want ok %v", tt.url, tt.from, err, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), "secretpw") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}
