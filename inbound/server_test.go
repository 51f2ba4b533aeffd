package inbound_test

import (
	"testing"

	"github.com/scimsync/scimsync/inbound"
)

// The settings a caller gave are the settings it reads back: defaults are
// applied inside, never written into the fields.
func TestHandlerLeavesSettings(t *testing.T) {
	s := &inbound.Server{}
	s.Handler()
	s.ForgetAll()
	if s.Log != nil || s.AuthCacheTTL != 0 || s.RequestTimeout != 0 {
		t.Errorf("Handler wrote its defaults: Log %v, AuthCacheTTL %v, RequestTimeout %v", s.Log, s.AuthCacheTTL, s.RequestTimeout)
	}
}
