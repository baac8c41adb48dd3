// dashboard-check: reads Grafana dashboard JSON files and checks each against Grafana's dashboard schema as
// the Grafana Foundation SDK generates it from Grafana's schemas: strict decoding (an unknown field or a
// value of the wrong type is an error, panel options and queries decoded by their plugin's own types) and
// the schema's constraints. Prints "ok <file>" or the errors, and exits 1 if any file fails.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dashboard-check <dashboard.json>...")
		os.Exit(2)
	}
	plugins.RegisterDefaultPlugins()
	failed := false
	for _, path := range os.Args[1:] {
		if err := check(path); err != nil {
			fmt.Printf("FAIL %s: %v\n", path, err)
			failed = true
			continue
		}
		fmt.Printf("ok %s\n", path)
	}
	if failed {
		os.Exit(1)
	}
}

func check(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var board dashboard.Dashboard
	if err := orNil(board.UnmarshalJSONStrict(raw)); err != nil {
		return err
	}
	return orNil(board.Validate())
}

// orNil: the SDK's strict decoder returns its (empty) error list even when nothing failed.
func orNil(err error) error {
	var list cog.BuildErrors
	if errors.As(err, &list) && len(list) == 0 {
		return nil
	}
	return err
}
