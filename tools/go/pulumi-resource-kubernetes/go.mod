module dtpoc.local/tools/pulumi-resource-kubernetes

go 1.24.7

require github.com/pulumi/pulumi-kubernetes/provider/v4 v4.0.0-20260115033456-f47bc2d6f199

// The provider's go.mod points the Go SDK at ../sdk, which is not in its module zip; the nearest
// release the module proxy serves stands in (the provider uses only its helper types).
replace github.com/pulumi/pulumi-kubernetes/sdk/v4 => github.com/pulumi/pulumi-kubernetes/sdk/v4 v4.29.0
