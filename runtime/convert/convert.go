// Package convert implements the Kafka Connect converters Ferry supports:
// JsonConverter (with and without the schema/payload envelope),
// StringConverter and ByteArrayConverter.
package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

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
	prefix, def := converterKey(isKey)
	class, src := classFrom(connector, worker, prefix, def)
	if src == nil {
		src = worker // a default class takes the worker's properties
	}
	return New(class, propsUnder(src, prefix), isKey)
}

// ClassFromConfig returns the converter class FromConfig uses.
func ClassFromConfig(connector, worker map[string]string, isKey bool) string {
	prefix, def := converterKey(isKey)
	class, _ := classFrom(connector, worker, prefix, def)
	return class
}

// converterKey is the configuration key of the key or value converter's
// class, and its default.
func converterKey(isKey bool) (key, def string) {
	if isKey {
		return connect.KeyKeyConverter, DefaultKeyConverter
	}
	return connect.KeyValueConverter, DefaultValueConverter
}

// classFrom returns the converter class set under key: the connector's
// wins over the worker's, which wins over def. As in Kafka Connect, a
// converter takes its properties from where its class was set: src is that
// configuration, nil for def.
func classFrom(connector, worker map[string]string, key, def string) (class string, src map[string]string) {
	if v := strings.TrimSpace(connector[key]); v != "" {
		return v, connector
	}
	if v := strings.TrimSpace(worker[key]); v != "" {
		return v, worker
	}
	return def, nil
}

// propsUnder returns src's "<prefix>.*" properties, the prefix stripped.
func propsUnder(src map[string]string, prefix string) map[string]string {
	props := map[string]string{}
	for k, v := range src {
		if strings.HasPrefix(k, prefix+".") {
			props[strings.TrimPrefix(k, prefix+".")] = v
		}
	}
	return props
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
// envelope: ToSchemaAndValue reads the schema into a connect.Schema and
// shapes the payload after it (connect.Schema's doc lists the Go shapes),
// refusing a payload that does not fit; a null schema leaves the payload
// schemaless. Without schemas.enable the message is plain JSON. Schemaless
// numbers stay json.Number so 64-bit integers are exact.
//
// Properties, as Kafka's: schemas.enable (true), decimal.format (BASE64:
// a Decimal is written as base64 of its unscaled bytes; NUMERIC: as a JSON
// number; both are read whatever the setting), replace.null.with.default
// (true: a null or absent value of a schema with a default reads and
// writes as the default), schemas.cache.size (1000 schemas read).
//
// The values ToValue and ToSchemaAndValue return share data's memory, as
// ByteArrayConverter returns data itself: their strings and numbers are
// parts of it, not of a copy (the copy was a third of what a small record
// cost the converter), so data must not be modified afterwards. The
// runtime converts the bytes of the records it fetched, which nothing
// modifies and which the record's RawKey and RawValue hold anyway. What
// outlives records has memory of its own: the objects' keys (a sink keeps
// them in the schemas it derives; see keyCache) and the schemas read
// (cached).
type JSON struct {
	Schemas bool

	decimalNumeric bool // decimal.format=NUMERIC
	replaceNull    bool // replace.null.with.default
	cacheSize      int

	// last is the schema this converter last wrote and its JSON: a task
	// gives every record the same schema, which is rendered once.
	last atomic.Pointer[renderedSchema]

	// keys gives the keys of the values read memory of their own (see
	// keyCache): taken by one call at a time (a call finding it taken
	// starts another).
	keys atomic.Pointer[keyCache]

	// read caches the schemas read, by their JSON text: a topic's records
	// carry the same schema, which is parsed once.
	mu   sync.Mutex
	read map[string]*connect.Schema
}

var _ connect.Converter = (*JSON)(nil)

// ErrEnvelope is returned for a message that lacks the schema/payload
// envelope while schemas.enable is true.
var ErrEnvelope = errors.New(`JsonConverter with schemas.enable requires "schema" and "payload" fields and may not contain additional fields; if you are trying to deserialize plain JSON data, set schemas.enable=false`)

// Configure reads schemas.enable (default true), decimal.format (BASE64 or
// NUMERIC, any case), replace.null.with.default (true) and
// schemas.cache.size (1000).
func (j *JSON) Configure(props map[string]string, _ bool) error {
	j.Schemas, j.replaceNull, j.decimalNumeric, j.cacheSize = true, true, false, defaultSchemaCache
	var problems []string
	boolProp := func(key string, dst *bool) {
		v, ok := props[key]
		if !ok {
			return
		}
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			*dst = true
		case "false":
			*dst = false
		default:
			problems = append(problems, fmt.Sprintf("%s must be true or false, got %q", key, v))
		}
	}
	boolProp("schemas.enable", &j.Schemas)
	boolProp("replace.null.with.default", &j.replaceNull)
	if v, ok := props["decimal.format"]; ok {
		if err := connect.CheckDecimalFormat(v); err != nil {
			problems = append(problems, "decimal.format "+err.Error())
		}
		j.decimalNumeric = strings.EqualFold(strings.TrimSpace(v), "NUMERIC")
	}
	if v, ok := props["schemas.cache.size"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			problems = append(problems, fmt.Sprintf("schemas.cache.size must be a non-negative integer, got %q", v))
		}
		j.cacheSize = n
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

const defaultSchemaCache = 1000

// decodeJSON decodes one JSON document into values of their own (a schema
// read is cached, and must not hold on to a record's memory).
func decodeJSON(data []byte) (any, error) {
	return decodeText(data, string(data), nil)
}

// decodeShared decodes a record's JSON into values whose strings and
// numbers share data's memory (see JSON); keys gives the objects' keys
// memory of their own.
func decodeShared(data []byte, keys *keyCache) (any, error) {
	return decodeText(data, sharedText(data), keys)
}

// sharedText is data as a string without a copy: data must not change
// afterwards.
func sharedText(data []byte) string {
	return unsafe.String(unsafe.SliceData(data), len(data))
}

// decodeText decodes data, whose text is text (data as a string).
func decodeText(data []byte, text string, keys *keyCache) (any, error) {
	v, end, err := parseJSON(data, text, keys)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if rest := bytes.TrimSpace(data[end:]); len(rest) > 0 {
		return nil, errors.New("invalid JSON: trailing data after the value")
	}
	return v, nil
}

// ToValue parses the JSON (nil for a Kafka null); with schemas.enable, the
// payload shaped after its schema (ToSchemaAndValue without the schema).
func (j *JSON) ToValue(topic string, data []byte) (any, error) {
	_, v, err := j.ToSchemaAndValue(topic, data)
	return v, err
}

var _ connect.SchemaConverter = (*JSON)(nil)

// ToSchemaAndValue reads a message as Kafka's toConnectData: with
// schemas.enable, the envelope's schema and its payload shaped after it (a
// null schema gives a nil schema and the schemaless payload); without, a
// nil schema and the plain JSON. A Kafka null is (nil, nil).
func (j *JSON) ToSchemaAndValue(_ string, data []byte) (*connect.Schema, any, error) {
	if data == nil {
		return nil, nil, nil
	}
	if !j.Schemas {
		if len(data) == 0 {
			return nil, nil, nil // as Kafka: empty bytes are a null
		}
		keys := j.takeKeys()
		v, err := decodeShared(data, keys)
		j.keys.Store(keys)
		return nil, v, err
	}
	keys := j.takeKeys()
	raw, payload, err := readEnvelope(data, keys)
	j.keys.Store(keys)
	if err != nil {
		return nil, nil, err
	}
	s, err := j.schemaOf(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("envelope schema: %w", err)
	}
	if s == nil {
		return nil, payload, nil
	}
	v, err := j.toConnect(s, payload)
	if err != nil {
		return nil, nil, fmt.Errorf("payload does not fit its schema: %w", err)
	}
	return s, v, nil
}

// takeKeys takes the converter's key cache, or a new one if another call
// has it; the caller puts it back.
func (j *JSON) takeKeys() *keyCache {
	if c := j.keys.Swap(nil); c != nil {
		return c
	}
	return new(keyCache)
}

// readEnvelope splits {"schema":…,"payload":…}: the schema's JSON text (to
// look up parsed) and the decoded payload.
func readEnvelope(data []byte, keys *keyCache) (schema []byte, payload any, err error) {
	notEnvelope := func() ([]byte, any, error) {
		if _, err := decodeJSON(data); err != nil {
			return nil, nil, err
		}
		return nil, nil, ErrEnvelope
	}
	// The payload shares data (its keys are interned); the schema is
	// copied by schemaOf.
	p := jsonParser{data: data, text: sharedText(data), keys: keys}
	keys.n = 0
	p.skipSpace()
	if p.i >= len(data) || data[p.i] != '{' {
		return notEnvelope()
	}
	p.i++
	p.skipSpace()
	var hasSchema, hasPayload bool
	for p.i < len(data) && data[p.i] == '"' {
		k, err := p.str()
		if err != nil {
			return notEnvelope()
		}
		p.skipSpace()
		if p.i >= len(data) || data[p.i] != ':' {
			return notEnvelope()
		}
		p.i++
		p.skipSpace()
		switch k {
		case "schema":
			start := p.i
			if err := p.skipValue(); err != nil {
				return notEnvelope()
			}
			schema, hasSchema = data[start:p.i], true
		case "payload":
			if payload, err = p.value(1); err != nil {
				return notEnvelope()
			}
			hasPayload = true
		default:
			return notEnvelope()
		}
		end, err := p.separator('}')
		if err != nil {
			return notEnvelope()
		}
		if end {
			if rest := bytes.TrimSpace(data[p.i:]); len(rest) > 0 || !hasSchema || !hasPayload {
				return notEnvelope()
			}
			return schema, payload, nil
		}
	}
	return notEnvelope()
}

// schemaOf returns the schema whose JSON text is raw, parsed once.
func (j *JSON) schemaOf(raw []byte) (*connect.Schema, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	j.mu.Lock()
	s, ok := j.read[string(raw)]
	j.mu.Unlock()
	if ok {
		return s, nil
	}
	tree, err := decodeJSON(raw)
	if err != nil {
		return nil, err
	}
	if s, err = j.parseSchema(tree); err != nil {
		return nil, err
	}
	j.mu.Lock()
	if j.read == nil || len(j.read) >= max(j.cacheSize, 1) {
		j.read = map[string]*connect.Schema{} // full: start over, as an LRU would evict
	}
	if j.cacheSize > 0 {
		j.read[string(raw)] = s
	}
	j.mu.Unlock()
	return s, nil
}

// FromValue renders v as JSON; with schemas.enable, inside an envelope with
// a null schema (the value has no Connect schema).
func (j *JSON) FromValue(_ string, v any) ([]byte, error) {
	if v == nil && !j.Schemas {
		return nil, nil
	}
	if j.Schemas {
		return envelope(nullSchema, func(b *bytes.Buffer) error { return writeMarshal(b, v) })
	}
	return Marshal(v)
}

// FromSchemaAndValue renders v, described by s, as Kafka's fromConnectData:
// with schemas.enable inside an envelope whose schema is s, else the value
// alone, written after s either way (logical types, bytes, defaults, a
// struct's fields in the schema's order). A nil s is FromValue.
func (j *JSON) FromSchemaAndValue(topic string, s *connect.Schema, v any) ([]byte, error) {
	if s == nil {
		return j.FromValue(topic, v)
	}
	if !j.Schemas {
		var b bytes.Buffer
		if err := j.writePayload(&b, s, v); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	r := j.last.Load()
	if r == nil || r.s != s {
		js, err := j.schemaJSON(s)
		if err != nil {
			return nil, err
		}
		r = &renderedSchema{s: s, json: js}
		j.last.Store(r)
	}
	return envelope(r.json, func(b *bytes.Buffer) error { return j.writePayload(b, s, v) })
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
