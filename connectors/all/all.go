// Package all registers every Ferry connector. Importing it fills
// connect.Default() (init-based); Register fills any other registry, which
// is what tests use.
package all

import (
	"fmt"

	"github.com/ferryhq/ferry/connectors/datagen"
	"github.com/ferryhq/ferry/connectors/s3sink"
	"github.com/ferryhq/ferry/runtime/connect"
)

// Plugins returns every connector Ferry ships.
func Plugins() []connect.Plugin {
	return []connect.Plugin{s3sink.Plugin(), datagen.Plugin()}
}

// Register adds every connector to reg.
func Register(reg *connect.Registry) error {
	for _, p := range Plugins() {
		if err := reg.Register(p); err != nil {
			return fmt.Errorf("register connectors: %w", err)
		}
	}
	return nil
}

func init() {
	if err := Register(connect.Default()); err != nil {
		panic(err) // a class registered twice is a programming error
	}
}
