// Package all registers every connector with connectors.Open. A command
// imports it for its side effect, to offer every connector:
//
//	import _ "github.com/scimsync/scimsync/connectors/all"
//
// Only commands do: libraries open connectors by type name and leave the
// set to the binary, and tests import the connectors they use
// (TestDependencyRules keeps it so).
package all

import (
	_ "github.com/scimsync/scimsync/connectors/entra"     // registers "entra"
	_ "github.com/scimsync/scimsync/connectors/google"    // registers "google"
	_ "github.com/scimsync/scimsync/connectors/jumpcloud" // registers "jumpcloud"
	_ "github.com/scimsync/scimsync/connectors/okta"      // registers "okta"
)
