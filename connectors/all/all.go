// Package all registers every connector with connectors.Open. Import it for
// its side effect where connectors are opened by type name:
//
//	import _ "github.com/scimsync/scimsync/connectors/all"
package all

import (
	_ "github.com/scimsync/scimsync/connectors/entra"     // registers "entra"
	_ "github.com/scimsync/scimsync/connectors/jumpcloud" // registers "jumpcloud"
	_ "github.com/scimsync/scimsync/connectors/okta"      // registers "okta"
)
