// Command pulumi-resource-kubernetes serves the Pulumi kubernetes provider.
//
// Upstream's main embeds schema files that its build generates; ours embeds the same schema and
// terraform mapping, copied from the provider module by tools/build.sh with the version stamped in.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var schema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, schema, terraformMapping)
}
