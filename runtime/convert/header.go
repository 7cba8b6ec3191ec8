package convert

import (
	"fmt"
	"strings"

	"github.com/ferryhq/ferry/runtime/connect"
)

// DefaultHeaderConverter is Kafka Connect's default header converter.
const DefaultHeaderConverter = connect.SimpleHeaderConverterClass

// SimpleHeader is org.apache.kafka.connect.storage.SimpleHeaderConverter:
// a header's bytes are UTF-8 text whose type is inferred (true → bool,
// 42 → integer, [..] / {..} → list / map, else a string); values are written
// back as text.
type SimpleHeader struct{}

var _ connect.Converter = (*SimpleHeader)(nil)

// Configure accepts anything.
func (*SimpleHeader) Configure(map[string]string, bool) error { return nil }

// ToValue parses the header text (nil for a null header).
func (*SimpleHeader) ToValue(_ string, data []byte) (any, error) {
	if data == nil {
		return nil, nil
	}
	return connect.ParseString(string(data)), nil
}

// FromValue renders v as text.
func (*SimpleHeader) FromValue(_ string, v any) ([]byte, error) {
	return connect.FormatValue(v), nil
}

// NewHeader makes the header converter of class configured with props (the
// "header.converter." prefix stripped).
func NewHeader(class string, props map[string]string) (connect.Converter, error) {
	var c connect.Converter
	switch strings.TrimSpace(class) {
	case connect.SimpleHeaderConverterClass:
		c = &SimpleHeader{}
	case connect.JSONConverterClass:
		c = &JSON{}
	case connect.StringConverterClass:
		c = &String{}
	case connect.ByteArrayConverterClass:
		c = &ByteArray{}
	default:
		return nil, fmt.Errorf("unsupported header converter %q; supported: %s", class, strings.Join(connect.HeaderConverterClasses(), ", "))
	}
	if err := c.Configure(props, false); err != nil {
		return nil, fmt.Errorf("configure %s: %w", class, err)
	}
	return c, nil
}

// HeaderFromConfig makes the header converter a connector uses: the
// connector's header.converter wins over the worker's, which wins over
// SimpleHeaderConverter; its "header.converter.*" properties come from the
// same place as its class.
func HeaderFromConfig(connector, worker map[string]string) (connect.Converter, error) {
	class, src := classFrom(connector, worker, connect.KeyHeaderConverter, DefaultHeaderConverter)
	return NewHeader(class, propsUnder(src, connect.KeyHeaderConverter))
}

// HeaderClassFromConfig returns the header converter class HeaderFromConfig
// uses.
func HeaderClassFromConfig(connector, worker map[string]string) string {
	class, _ := classFrom(connector, worker, connect.KeyHeaderConverter, DefaultHeaderConverter)
	return class
}
