package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/connectors"
)

// The binary decides which connectors exist; the packages it links in
// import none (TestDependencyRules).
func TestOffersEveryConnector(t *testing.T) {
	if diff := cmp.Diff([]string{"entra", "google", "jumpcloud", "okta"}, connectors.Types()); diff != "" {
		t.Errorf("connector types (-want +got):\n%s", diff)
	}
}
