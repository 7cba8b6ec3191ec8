// Package convert implements the Kafka Connect converters Ferry supports:
// JsonConverter (with and without the schema/payload envelope),
// StringConverter and ByteArrayConverter.
package convert

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Defaults MSK Connect's default worker configuration uses for both keys and
// values (docs.aws.amazon.com/msk/latest/developerguide/msk-connect-workers.html).
const (
	DefaultKeyConverter   = connect.StringConverterClass
	DefaultValueConverter = connect.StringConverterClass
)

// New makes the converter of class configured with props (the
// "<key|value>.converter." prefix already stripped).
func New(class string, props map[string]string, isKey bool) (connect.Converter, error) {
	var c connect.Converter
	switch strings.TrimSpace(class) {
	case connect.JSONConverterClass:
		c = &JSON{}
	case connect.StringConverterClass:
		c = &String{}
	case connect.ByteArrayConverterClass:
		c = &ByteArray{}
	default:
		return nil, fmt.Errorf("unsupported converter %q; supported: %s", class, strings.Join(connect.ConverterClasses(), ", "))
	}
	if err := c.Configure(props, isKey); err != nil {
		return nil, fmt.Errorf("configure %s: %w", class, err)
	}
	return c, nil
}

// FromConfig makes the key (isKey) or value converter a connector uses:
// the connector's own "key.converter"/"value.converter" wins over the
// worker properties', which win over the MSK Connect defaults; the
// converter's "<prefix>.*" properties come from the same place as its class.
func FromConfig(connector, worker map[string]string, isKey bool) (connect.Converter, error) {
	prefix := connect.KeyValueConverter
	if isKey {
		prefix = connect.KeyKeyConverter
	}
	class := ClassFromConfig(connector, worker, isKey)
	// As in Kafka Connect, a converter takes its properties from where its
	// class was set: the connector's configuration or the worker's.
	src := worker
	if strings.TrimSpace(connector[prefix]) != "" {
		src = connector
	}
	props := map[string]string{}
	for k, v := range src {
		if strings.HasPrefix(k, prefix+".") {
			props[strings.TrimPrefix(k, prefix+".")] = v
		}
	}
	return New(class, props, isKey)
}

// ClassFromConfig returns the converter class FromConfig uses.
func ClassFromConfig(connector, worker map[string]string, isKey bool) string {
	prefix, class := connect.KeyValueConverter, DefaultValueConverter
	if isKey {
		prefix, class = connect.KeyKeyConverter, DefaultKeyConverter
	}
	if v := strings.TrimSpace(connector[prefix]); v != "" {
		return v
	}
	if v := strings.TrimSpace(worker[prefix]); v != "" {
		return v
	}
	return class
}

// String is org.apache.kafka.connect.storage.StringConverter: bytes are
// UTF-8 text.
type String struct{}

var _ connect.Converter = (*String)(nil)

// Configure accepts converter.encoding UTF-8 only.
func (*String) Configure(props map[string]string, _ bool) error {
	for _, k := range []string{"converter.encoding", "encoding"} {
		if e := strings.ToUpper(strings.ReplaceAll(props[k], "-", "")); e != "" && e != "UTF8" {
			return fmt.Errorf("%s %q is not supported; only UTF-8", k, props[k])
		}
	}
	return nil
}

// ToValue returns the bytes as a string (nil for null).
func (*String) ToValue(_ string, data []byte) (any, error) {
	if data == nil {
		return nil, nil
	}
	return string(data), nil
}

// FromValue renders v as text.
func (*String) FromValue(_ string, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(x), nil
	case []byte:
		return x, nil
	case map[string]any, []any:
		return json.Marshal(x)
	default:
		return []byte(fmt.Sprint(x)), nil
	}
}

// ByteArray is org.apache.kafka.connect.converters.ByteArrayConverter: the
// bytes pass through.
type ByteArray struct{}

var _ connect.Converter = (*ByteArray)(nil)

// Configure accepts anything.
func (*ByteArray) Configure(map[string]string, bool) error { return nil }

// ToValue returns the bytes unchanged (nil for null).
func (*ByteArray) ToValue(_ string, data []byte) (any, error) {
	if data == nil {
		return nil, nil
	}
	return data, nil
}

// FromValue accepts []byte and nil only, as Kafka's does.
func (*ByteArray) FromValue(_ string, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		return x, nil
	}
	return nil, fmt.Errorf("ByteArrayConverter is not compatible with values of type %T", v)
}

// JSON is org.apache.kafka.connect.json.JsonConverter. With schemas.enable
// (the default, as in Kafka) every message is a {"schema":…,"payload":…}
// envelope and the value is the payload, with "bytes" fields base64-decoded
// as the schema says; without, the message is plain JSON. Numbers stay
// json.Number so 64-bit integers are exact.
type JSON struct {
	Schemas bool

	// last is the schema this converter last wrote and its JSON: a task
	// gives every record the same schema, which is rendered once.
	last atomic.Pointer[renderedSchema]
}

var _ connect.Converter = (*JSON)(nil)

// ErrEnvelope is returned for a message that lacks the schema/payload
// envelope while schemas.enable is true.
var ErrEnvelope = errors.New(`JsonConverter with schemas.enable requires "schema" and "payload" fields and may not contain additional fields; if you are trying to deserialize plain JSON data, set schemas.enable=false`)

// Configure reads schemas.enable (default true).
func (j *JSON) Configure(props map[string]string, _ bool) error {
	j.Schemas = true
	if v, ok := props["schemas.enable"]; ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
		case "false":
			j.Schemas = false
		default:
			return fmt.Errorf("schemas.enable must be true or false, got %q", v)
		}
	}
	return nil
}

func decodeJSON(data []byte) (any, error) {
	v, end, err := parseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if rest := bytes.TrimSpace(data[end:]); len(rest) > 0 {
		return nil, errors.New("invalid JSON: trailing data after the value")
	}
	return v, nil
}

// ToValue parses the JSON (nil for a Kafka null).
func (j *JSON) ToValue(_ string, data []byte) (any, error) {
	if data == nil {
		return nil, nil
	}
	v, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	if !j.Schemas {
		return v, nil
	}
	env, ok := v.(map[string]any)
	if !ok || len(env) != 2 {
		return nil, ErrEnvelope
	}
	schema, okS := env["schema"]
	payload, okP := env["payload"]
	if !okS || !okP {
		return nil, ErrEnvelope
	}
	return applySchema(schema, payload)
}

// applySchema walks payload along schema, decoding base64 "bytes" values.
func applySchema(schema, payload any) (any, error) {
	s, ok := schema.(map[string]any)
	if !ok || payload == nil {
		return payload, nil // null schema: schemaless payload
	}
	typ, _ := s["type"].(string)
	switch typ {
	case "bytes":
		str, ok := payload.(string)
		if !ok {
			return nil, fmt.Errorf("schema type bytes needs a base64 string payload, got %T", payload)
		}
		b, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			return nil, fmt.Errorf("schema type bytes: invalid base64: %w", err)
		}
		return b, nil
	case "struct":
		obj, ok := payload.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("schema type struct needs an object payload, got %T", payload)
		}
		fields, _ := s["fields"].([]any)
		for _, f := range fields {
			fm, _ := f.(map[string]any)
			name, _ := fm["field"].(string)
			if fv, ok := obj[name]; ok {
				cv, err := applySchema(fm, fv)
				if err != nil {
					return nil, fmt.Errorf("field %q: %w", name, err)
				}
				obj[name] = cv
			}
		}
		return obj, nil
	case "array":
		arr, ok := payload.([]any)
		if !ok {
			return nil, fmt.Errorf("schema type array needs an array payload, got %T", payload)
		}
		for i := range arr {
			cv, err := applySchema(s["items"], arr[i])
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			arr[i] = cv
		}
		return arr, nil
	case "map":
		if obj, ok := payload.(map[string]any); ok {
			for k, v := range obj {
				cv, err := applySchema(s["values"], v)
				if err != nil {
					return nil, fmt.Errorf("map value %q: %w", k, err)
				}
				obj[k] = cv
			}
			return obj, nil
		}
		return payload, nil // non-string keys travel as [[k, v], ...]; kept as is
	}
	return payload, nil
}

// FromValue renders v as JSON; with schemas.enable, inside an envelope with
// a null schema (Ferry values carry no Connect schema).
func (j *JSON) FromValue(_ string, v any) ([]byte, error) {
	if v == nil && !j.Schemas {
		return nil, nil
	}
	if j.Schemas {
		return envelope(nullSchema, nil, v)
	}
	return Marshal(v)
}

var _ connect.SchemaConverter = (*JSON)(nil)

// FromSchemaAndValue renders v as JSON; with schemas.enable, inside an
// envelope whose schema is s, as Kafka's JsonConverter writes a value with
// a Connect schema. A nil s is FromValue.
func (j *JSON) FromSchemaAndValue(topic string, s *connect.Schema, v any) ([]byte, error) {
	if s == nil || !j.Schemas {
		return j.FromValue(topic, v)
	}
	r := j.last.Load()
	if r == nil || r.s != s {
		r = &renderedSchema{s: s, json: schemaJSON(s)}
		j.last.Store(r)
	}
	return envelope(r.json, s, v)
}

// Marshal encodes v as compact JSON without HTML escaping and without a
// trailing newline. Map keys are sorted, so the output is deterministic.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
