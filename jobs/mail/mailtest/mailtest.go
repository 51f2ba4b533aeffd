// Package mailtest runs a real SMTP server on loopback for tests: it can
// offer STARTTLS or speak TLS from the start, require AUTH PLAIN, keep the
// messages it accepts, and fail on demand with an SMTP reply or a dropped
// connection.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options shape a Server.
type Options struct {
	// StartTLS offers STARTTLS; Implicit speaks TLS from the first byte.
	StartTLS, Implicit bool
	// User and Password, when User is set, are required by AUTH PLAIN,
	// which is offered only over TLS.
	User, Password string
}

// Message is one accepted e-mail.
type Message struct {
	From string
	To   []string
	// TLS and Authenticated say how the session that sent it was secured.
	TLS, Authenticated bool
	Raw                []byte
}

// Failure is how the server answers the next DATA instead of accepting it.
type Failure struct {
	// Reply is an SMTP reply such as 451 or 550.
	Reply *smtp.SMTPError
	// Drop closes the connection after the data, without a reply.
	Drop bool
}

// Server is a loopback SMTP server.
type Server struct {
	Addr string
	opts Options
	cert *x509.Certificate

	mu       sync.Mutex
	messages []Message
	failures []Failure
}

// Start runs a server until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	var tlsCfg *tls.Config
	var cert *x509.Certificate
	if opts.StartTLS || opts.Implicit {
		tlsCfg, cert = selfSigned(t)
	}
	s, closeFn, err := serve(opts, tlsCfg, cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeFn() })
	return s
}

// Serve runs a plain (no TLS) server outside a test, such as in a load or
// fault-injection tool; the returned function stops it.
func Serve(opts Options) (*Server, func() error, error) {
	if opts.StartTLS || opts.Implicit {
		return nil, nil, errors.New("mailtest: Serve offers no TLS; use Start in tests")
	}
	return serve(opts, nil, nil)
}

func serve(opts Options, tlsCfg *tls.Config, cert *x509.Certificate) (*Server, func() error, error) {
	s := &Server{opts: opts, cert: cert}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = nopLogger{}
	srv.TLSConfig = tlsCfg
	var ln net.Listener
	var err error
	if opts.Implicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", tlsCfg)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("mailtest: listen: %w", err)
	}
	s.Addr = ln.Addr().String()
	go srv.Serve(ln)
	return s, srv.Close, nil
}

// URL is an SMTP_URL for the server.
func (s *Server) URL() string {
	scheme := "smtp"
	if s.opts.Implicit {
		scheme = "smtps"
	}
	cred := ""
	if s.opts.User != "" {
		cred = s.opts.User + ":" + s.opts.Password + "@"
	}
	return scheme + "://" + cred + s.Addr
}

// ClientTLS trusts the server's certificate.
func (s *Server) ClientTLS() *tls.Config {
	pool := x509.NewCertPool()
	if s.cert != nil {
		pool.AddCert(s.cert)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// FailNext makes the next DATA commands fail, one failure each.
func (s *Server) FailNext(f ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, f...)
}

// ClearFailures drops the failures FailNext queued that no DATA has met yet.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = nil
}

// Messages returns the accepted messages.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{srv: s, conn: c}, nil
}

type session struct {
	srv    *Server
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.srv.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != ss.srv.opts.User || pass != ss.srv.opts.Password {
			return errors.New("invalid credentials")
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.srv.opts.User != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := ss.conn.TLSConnectionState()
	s := ss.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) > 0 {
		f := s.failures[0]
		s.failures = s.failures[1:]
		if f.Drop {
			ss.conn.Conn().Close()
			return errors.New("dropped")
		}
		return f.Reply
	}
	s.messages = append(s.messages, Message{From: ss.from, To: ss.to, TLS: isTLS, Authenticated: ss.authed, Raw: raw})
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// TextBody decodes the message's text/plain part.
func (m Message) TextBody() (string, error) { return m.part("text/plain") }

// HTMLBody decodes the message's text/html part.
func (m Message) HTMLBody() (string, error) { return m.part("text/html") }

// Header returns a decoded header field.
func (m Message) Header(name string) (string, error) {
	msg, err := netmail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		return "", err
	}
	return new(mime.WordDecoder).DecodeHeader(msg.Header.Get(name))
}

func (m Message) part(want string) (string, error) {
	msg, err := netmail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		return "", err
	}
	return findPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, want)
}

func findPart(contentType, encoding string, body io.Reader, want string) (string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return "", fmt.Errorf("no %s part", want)
			}
			if err != nil {
				return "", err
			}
			if s, err := findPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, want); err == nil {
				return s, nil
			}
		}
	}
	if mt != want {
		return "", fmt.Errorf("no %s part", want)
	}
	if strings.EqualFold(encoding, "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	return string(b), err
}

func selfSigned(t testing.TB) (*tls.Config, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mailtest"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, cert
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}
