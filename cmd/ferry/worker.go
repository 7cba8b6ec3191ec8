package main

import (
	"context"

	"github.com/ferryhq/ferry/runtime/worker"

	// Every built-in connector registers itself in the default registry.
	_ "github.com/ferryhq/ferry/connectors/all"
)

// runWorker runs one worker of a connector with Ferry's built-in
// connectors; a custom plugin's binary runs the same worker.Run with its
// own connectors added (docs/plugins.md).
func runWorker(ctx context.Context, args []string) error {
	return worker.Run(ctx, args)
}
