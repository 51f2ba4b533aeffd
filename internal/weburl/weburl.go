// Package weburl holds the one rule for URLs scimsync calls out to (IdP
// base URLs, webhook endpoints): https, or plain http for a loopback host
// only; and which addresses count as private.
package weburl

import (
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrScheme is a URL that is neither https nor http to a loopback host.
var ErrScheme = errors.New("must use https (http is accepted only for a loopback host)")

// CheckScheme accepts https, and http for a loopback host.
func CheckScheme(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
	}
	return ErrScheme
}

// IsLoopback reports whether host (no port) is a loopback name or address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsPrivate reports whether ip is private, link-local, unspecified or
// otherwise not a public unicast address. Loopback is not counted: it is
// the documented exception.
func IsPrivate(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || !ip.IsValid()
}

// ErrPrivate is an address refused as private.
var ErrPrivate = errors.New("resolves to a private, link-local or unspecified address")

// DialControl is a net.Dialer Control that refuses private addresses: the
// check made at dial time, on the address actually connected to, so a
// name that resolved to a public address when checked cannot rebind to a
// private one.
func DialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return err
	}
	if IsPrivate(ap.Addr()) {
		return ErrPrivate
	}
	return nil
}
