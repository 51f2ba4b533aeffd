package all_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/connectors"
	_ "github.com/scimsync/scimsync/connectors/all"
)

func TestRegistersEveryConnector(t *testing.T) {
	if diff := cmp.Diff([]string{"entra", "google", "jumpcloud", "okta"}, connectors.Types()); diff != "" {
		t.Errorf("registered types (-want +got):\n%s", diff)
	}
}
