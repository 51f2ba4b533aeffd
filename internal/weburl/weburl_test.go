package weburl

import (
	"errors"
	"net/netip"
	"net/url"
	"testing"
)

func TestCheckScheme(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://example.com": true, "http://127.0.0.1:8080": true, "http://localhost": true, "http://[::1]:9": true,
		"http://example.com": false, "http://10.0.0.1": false, "ftp://example.com": false,
	} {
		u, _ := url.Parse(raw)
		if err := CheckScheme(u); (err == nil) != ok {
			t.Errorf("CheckScheme(%s) = %v, want ok=%t", raw, err, ok)
		}
	}
}

func TestDialControl(t *testing.T) {
	for addr, ok := range map[string]bool{
		"93.184.216.34:443": true, "127.0.0.1:80": true, "[::1]:80": true,
		"10.0.0.1:443": false, "172.16.0.1:443": false, "192.168.0.1:443": false, "169.254.169.254:80": false,
		"0.0.0.0:80": false, "[::]:80": false, "[fe80::1]:80": false, "[fd00::1]:80": false, "[::ffff:10.0.0.1]:80": false,
	} {
		err := DialControl("tcp", addr, nil)
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrPrivate)) {
			t.Errorf("DialControl(%s) = %v, want ok=%t", addr, err, ok)
		}
	}
	if IsPrivate(netip.MustParseAddr("8.8.8.8")) {
		t.Error("8.8.8.8 counted private")
	}
}
