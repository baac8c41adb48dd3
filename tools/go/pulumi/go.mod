module dtpoc.local/tools/pulumi

go 1.26.6

require (
	github.com/pulumi/pulumi/pkg/v3 v3.260.0
	github.com/pulumi/pulumi/sdk/v3 v3.260.0
)

// Copied from pulumi/pkg's go.mod: replace directives of a dependency do not apply to us.
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
