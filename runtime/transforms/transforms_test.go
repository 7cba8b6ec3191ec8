package transforms

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
	"github.com/ferryhq/ferry/runtime/convert"
)

var ts = time.Date(2024, 3, 5, 14, 7, 9, 123_000_000, time.UTC)

func rec(key, value any, headers ...connect.Header) *connect.Record {
	return &connect.Record{Topic: "orders", Partition: 2, Offset: 42, Timestamp: ts,
		Key: key, Value: value, RawKey: []byte("k"), RawValue: []byte("v"), Headers: headers}
}

func obj(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// chain builds a one-transform chain from "transforms.t.*" options.
func chain(t *testing.T, class string, props map[string]string) (connect.Chain, error) {
	t.Helper()
	cfg := map[string]string{"transforms": "t", "transforms.t.type": class}
	for k, v := range props {
		cfg["transforms.t."+k] = v
	}
	return connect.NewRegistry().BuildChain(cfg)
}

func TestTransforms(t *testing.T) {
	n := func(s string) json.Number { return json.Number(s) }
	cases := []struct {
		name    string
		class   string
		props   map[string]string
		in      *connect.Record
		key     any
		value   any
		topic   string
		headers []connect.Header
		dropped bool
		err     string
	}{
		{name: "InsertField$Value all metadata", class: "InsertField$Value",
			props: map[string]string{"topic.field": "t", "partition.field": "p", "offset.field": "o!", "timestamp.field": "ts?", "static.field": "s", "static.value": "x"},
			in:    rec(nil, obj("a", n("1"))),
			value: obj("a", n("1"), "t", "orders", "p", int32(2), "o", int64(42), "ts", ts.UnixMilli(), "s", "x")},
		{name: "InsertField$Key", class: "InsertField$Key", props: map[string]string{"topic.field": "t"},
			in: rec(obj("id", "1"), "v"), key: obj("id", "1", "t", "orders"), value: "v"},
		{name: "InsertField tombstone passes", class: "InsertField$Value", props: map[string]string{"topic.field": "t"},
			in: rec("k", nil), key: "k", value: nil},
		{name: "InsertField non-map", class: "InsertField$Value", props: map[string]string{"topic.field": "t"},
			in: rec(nil, "text"), err: "only Map objects supported in absence of schema for [field insertion], found: string"},

		{name: "ReplaceField exclude+rename", class: "ReplaceField$Value",
			props: map[string]string{"exclude": "secret", "renames": "a:alpha,b:beta"},
			in:    rec(nil, obj("a", 1, "b", 2, "c", 3, "secret", "x")), value: obj("alpha", 1, "beta", 2, "c", 3)},
		{name: "ReplaceField include", class: "ReplaceField$Value", props: map[string]string{"include": "a,c"},
			in: rec(nil, obj("a", 1, "b", 2, "c", 3)), value: obj("a", 1, "c", 3)},
		{name: "ReplaceField whitelist/blacklist", class: "ReplaceField$Value", props: map[string]string{"whitelist": "a,b", "blacklist": "b"},
			in: rec(nil, obj("a", 1, "b", 2, "c", 3)), value: obj("a", 1)},
		{name: "ReplaceField$Key", class: "ReplaceField$Key", props: map[string]string{"exclude": "x"},
			in: rec(obj("x", 1, "y", 2), nil), key: obj("y", 2)},

		{name: "MaskField empty values", class: "MaskField$Value", props: map[string]string{"fields": "s,n,b,l,m,f,missing"},
			in:    rec(nil, obj("s", "secret", "n", n("12"), "b", true, "l", []any{1}, "m", obj("a", 1), "f", 1.5, "keep", "k")),
			value: obj("s", "", "n", n("0"), "b", false, "l", []any{}, "m", map[string]any{}, "f", 0.0, "keep", "k", "missing", nil)},
		{name: "MaskField replacement", class: "MaskField$Value", props: map[string]string{"fields": "s,n", "replacement": "99"},
			in: rec(nil, obj("s", "secret", "n", n("12"))), value: obj("s", "99", "n", n("99"))},
		{name: "MaskField replacement not a number", class: "MaskField$Value", props: map[string]string{"fields": "n", "replacement": "***"},
			in: rec(nil, obj("n", n("12"))), err: "unable to convert *** (string) to number"},
		{name: "MaskField null value", class: "MaskField$Value", props: map[string]string{"fields": "n"},
			in: rec(nil, nil), err: "only Map objects supported in absence of schema for [mask fields], found: null"},

		{name: "Cast fields", class: "Cast$Value", props: map[string]string{"spec": "a:int32,b:float64,c:boolean,d:string,e:int8,f:boolean,g:string"},
			in:    rec(nil, obj("a", "17", "b", n("2"), "c", n("0"), "d", n("12345678901234"), "e", 3.9, "f", "TRUE", "g", true)),
			value: obj("a", int32(17), "b", 2.0, "c", false, "d", "12345678901234", "e", int8(3), "f", true, "g", "true")},
		{name: "Cast whole value", class: "Cast$Value", props: map[string]string{"spec": "int64"},
			in: rec(nil, "42"), value: int64(42)},
		{name: "Cast$Key whole", class: "Cast$Key", props: map[string]string{"spec": "string"},
			in: rec(n("7"), nil), key: "7"},
		{name: "Cast float to string like Java", class: "Cast$Value", props: map[string]string{"spec": "string"},
			in: rec(nil, 1.0), value: "1.0"},
		{name: "Cast bad string", class: "Cast$Value", props: map[string]string{"spec": "x:int16"},
			in: rec(nil, obj("x", "1.5")), err: `value (1.5) was out of range for requested data type int16`},
		{name: "Cast map", class: "Cast$Value", props: map[string]string{"spec": "string"},
			in: rec(nil, obj("a", 1)), err: "does not support casting to/from MAP"},
		{name: "Cast tombstone", class: "Cast$Value", props: map[string]string{"spec": "string"},
			in: rec(nil, nil), value: nil},

		{name: "ExtractField", class: "ExtractField$Value", props: map[string]string{"field": "id"},
			in: rec(nil, obj("id", n("5"), "x", 1)), value: n("5")},
		{name: "ExtractField missing", class: "ExtractField$Key", props: map[string]string{"field": "id"},
			in: rec(obj("x", 1), nil), key: nil},
		{name: "ExtractField null", class: "ExtractField$Value", props: map[string]string{"field": "id"},
			in: rec(nil, nil), value: nil},
		{name: "ExtractField nested V2", class: "ExtractField$Value", props: map[string]string{"field": "a.b", "field.syntax.version": "V2"},
			in: rec(nil, obj("a", obj("b", "deep"))), value: "deep"},
		{name: "ExtractField nested V1 reads the dotted name", class: "ExtractField$Value", props: map[string]string{"field": "a.b"},
			in: rec(nil, obj("a.b", "flat", "a", obj("b", "deep"))), value: "flat"},
		{name: "ExtractField non-map", class: "ExtractField$Value", props: map[string]string{"field": "id"},
			in: rec(nil, "s"), err: "[field extraction], found: string"},

		{name: "HoistField", class: "HoistField$Value", props: map[string]string{"field": "line"},
			in: rec(nil, "hello"), value: obj("line", "hello")},
		{name: "HoistField$Key", class: "HoistField$Key", props: map[string]string{"field": "id"},
			in: rec(n("3"), nil), key: obj("id", n("3"))},

		{name: "ValueToKey", class: "ValueToKey", props: map[string]string{"fields": "id,region"},
			in: rec(nil, obj("id", n("1"), "region", "eu", "x", 0)), key: obj("id", n("1"), "region", "eu"), value: obj("id", n("1"), "region", "eu", "x", 0)},
		{name: "ValueToKey tombstone", class: "ValueToKey", props: map[string]string{"fields": "id"},
			in: rec(nil, nil), err: "[copying fields from value to key], found: null"},

		{name: "TimestampRouter defaults", class: "TimestampRouter", in: rec(nil, "v"), value: "v", topic: "orders-20240305"},
		{name: "TimestampRouter format", class: "TimestampRouter", props: map[string]string{"topic.format": "${timestamp}_${topic}", "timestamp.format": "yyyy-MM-dd'T'HH"},
			in: rec(nil, "v"), value: "v", topic: "2024-03-05T14_orders"},

		{name: "RegexRouter", class: "RegexRouter", props: map[string]string{"regex": "(.*)ders", "replacement": "$1-x"},
			in: rec(nil, "v"), value: "v", topic: "or-x"},
		{name: "RegexRouter needs a full match", class: "RegexRouter", props: map[string]string{"regex": "ord", "replacement": "x"},
			in: rec(nil, "v"), value: "v", topic: "orders"},

		{name: "Filter", class: "Filter", in: rec(nil, "v"), dropped: true},

		{name: "Flatten", class: "Flatten$Value", in: rec(nil, obj("a", obj("b", 1, "c", obj("d", "x")), "e", []any{1}, "n", nil)),
			value: obj("a.b", 1, "a.c.d", "x", "e", []any{1}, "n", nil)},
		{name: "Flatten delimiter", class: "Flatten$Key", props: map[string]string{"delimiter": "_"},
			in: rec(obj("a", obj("b", 1)), nil), key: obj("a_b", 1)},

		{name: "TimestampConverter unix to string", class: "TimestampConverter$Value",
			props: map[string]string{"field": "at", "target.type": "string", "format": "yyyy-MM-dd HH:mm:ss.SSS"},
			in:    rec(nil, obj("at", n("1709647629123"))), value: obj("at", "2024-03-05 14:07:09.123")},
		{name: "TimestampConverter string to unix seconds", class: "TimestampConverter$Value",
			props: map[string]string{"field": "at", "target.type": "unix", "format": "yyyy-MM-dd'T'HH:mm:ssXXX", "unix.precision": "seconds"},
			in:    rec(nil, obj("at", "2024-03-05T14:07:09Z")), value: obj("at", int64(1709647629))},
		{name: "TimestampConverter whole value to Timestamp", class: "TimestampConverter$Value", props: map[string]string{"target.type": "Timestamp"},
			in: rec(nil, n("1709647629123")), value: ts},
		{name: "TimestampConverter to Date", class: "TimestampConverter$Value", props: map[string]string{"target.type": "Date"},
			in: rec(nil, n("1709647629123")), value: time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)},
		{name: "TimestampConverter to Time", class: "TimestampConverter$Key", props: map[string]string{"target.type": "Time"},
			in: rec(n("1709647629123"), nil), key: time.Date(1970, 1, 1, 14, 7, 9, 123_000_000, time.UTC)},
		{name: "TimestampConverter micros truncate to millis", class: "TimestampConverter$Value", props: map[string]string{"target.type": "unix", "unix.precision": "microseconds"},
			in: rec(nil, n("1709647629123456")), value: int64(1709647629123000)},
		{name: "TimestampConverter bad string", class: "TimestampConverter$Value", props: map[string]string{"target.type": "unix", "format": "yyyy-MM-dd"},
			in: rec(nil, "05/03/2024"), err: "could not parse timestamp: value (05/03/2024) does not match pattern (yyyy-MM-dd)"},
		{name: "TimestampConverter string needs format", class: "TimestampConverter$Value", props: map[string]string{"target.type": "unix"},
			in: rec(nil, "2024-03-05"), err: "requires format option"},

		{name: "HeaderFrom copy", class: "HeaderFrom$Value", props: map[string]string{"fields": "id,tenant", "headers": "h_id,h_tenant", "operation": "copy"},
			in: rec(nil, obj("id", n("1"), "tenant", "acme")), value: obj("id", n("1"), "tenant", "acme"),
			headers: []connect.Header{{Key: "h_id", Data: n("1")}, {Key: "h_tenant", Data: "acme"}}},
		{name: "HeaderFrom move key", class: "HeaderFrom$Key", props: map[string]string{"fields": "id", "headers": "id", "operation": "move"},
			in: rec(obj("id", "a", "x", 1), nil), key: obj("x", 1), headers: []connect.Header{{Key: "id", Data: "a"}}},

		{name: "InsertHeader", class: "InsertHeader", props: map[string]string{"header": "source", "value.literal": "ferry"},
			in: rec(nil, "v"), value: "v", headers: []connect.Header{{Key: "source", Data: "ferry"}}},
		{name: "InsertHeader typed literal", class: "InsertHeader", props: map[string]string{"header": "n", "value.literal": "42"},
			in: rec(nil, "v"), value: "v", headers: []connect.Header{{Key: "n", Data: int64(42)}}},

		{name: "DropHeaders", class: "DropHeaders", props: map[string]string{"headers": "a,c"},
			in:    rec(nil, "v", connect.Header{Key: "a", Value: []byte("1")}, connect.Header{Key: "b", Value: []byte("2")}, connect.Header{Key: "a", Value: []byte("3")}, connect.Header{Key: "c"}),
			value: "v", headers: []connect.Header{{Key: "b", Value: []byte("2")}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := chain(t, Prefix+tc.class, tc.props)
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			out, err := c.Apply(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if tc.dropped {
				if out != nil {
					t.Fatalf("record not dropped: %+v", out)
				}
				return
			}
			if out == nil {
				t.Fatal("record dropped")
			}
			if !reflect.DeepEqual(out.Key, tc.key) {
				t.Errorf("key = %#v, want %#v", out.Key, tc.key)
			}
			if !reflect.DeepEqual(out.Value, tc.value) {
				t.Errorf("value = %#v, want %#v", out.Value, tc.value)
			}
			want := tc.topic
			if want == "" {
				want = "orders"
			}
			if out.Topic != want {
				t.Errorf("topic = %q, want %q", out.Topic, want)
			}
			if len(out.Headers) != len(tc.headers) || (len(tc.headers) > 0 && !reflect.DeepEqual(out.Headers, tc.headers)) {
				t.Errorf("headers = %#v, want %#v", out.Headers, tc.headers)
			}
		})
	}
}

func TestTransformedSideDropsRawBytes(t *testing.T) {
	c, err := chain(t, Prefix+"HoistField$Value", map[string]string{"field": "f"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Apply(rec("k", "v"))
	if err != nil {
		t.Fatal(err)
	}
	if out.RawValue != nil || string(out.RawKey) != "k" {
		t.Fatalf("raw key %q value %q: the changed value's bytes must be dropped, the key's kept", out.RawKey, out.RawValue)
	}
}

func TestPredicates(t *testing.T) {
	base := map[string]string{
		"transforms":                "drop",
		"transforms.drop.type":      Prefix + "Filter",
		"transforms.drop.predicate": "p",
		"predicates":                "p",
	}
	cases := []struct {
		name    string
		props   map[string]string
		negate  bool
		in      *connect.Record
		dropped bool
	}{
		{name: "TopicNameMatches match", props: map[string]string{"type": PredicatePrefix + "TopicNameMatches", "pattern": "ord.*"}, in: rec(nil, "v"), dropped: true},
		{name: "TopicNameMatches is a full match", props: map[string]string{"type": PredicatePrefix + "TopicNameMatches", "pattern": "ord"}, in: rec(nil, "v")},
		{name: "TopicNameMatches negated", props: map[string]string{"type": PredicatePrefix + "TopicNameMatches", "pattern": "ord.*"}, negate: true, in: rec(nil, "v")},
		{name: "HasHeaderKey", props: map[string]string{"type": PredicatePrefix + "HasHeaderKey", "name": "skip"}, in: rec(nil, "v", connect.Header{Key: "skip"}), dropped: true},
		{name: "HasHeaderKey absent", props: map[string]string{"type": PredicatePrefix + "HasHeaderKey", "name": "skip"}, in: rec(nil, "v", connect.Header{Key: "other"})},
		{name: "RecordIsTombstone", props: map[string]string{"type": PredicatePrefix + "RecordIsTombstone"}, in: rec("k", nil), dropped: true},
		{name: "RecordIsTombstone not", props: map[string]string{"type": PredicatePrefix + "RecordIsTombstone"}, in: rec("k", "v")},
		{name: "RecordIsTombstone negated keeps tombstones only", props: map[string]string{"type": PredicatePrefix + "RecordIsTombstone"}, negate: true, in: rec("k", "v"), dropped: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := map[string]string{}
			for k, v := range base {
				cfg[k] = v
			}
			for k, v := range tc.props {
				cfg["predicates.p."+k] = v
			}
			if tc.negate {
				cfg["transforms.drop.negate"] = "true"
			}
			c, err := connect.NewRegistry().BuildChain(cfg)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.Apply(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if (out == nil) != tc.dropped {
				t.Fatalf("dropped = %v, want %v", out == nil, tc.dropped)
			}
		})
	}
}

func TestChainOrder(t *testing.T) {
	cfg := map[string]string{
		"transforms":                     "hoist,insert,route",
		"transforms.hoist.type":          Prefix + "HoistField$Value",
		"transforms.hoist.field":         "line",
		"transforms.insert.type":         Prefix + "InsertField$Value",
		"transforms.insert.offset.field": "off",
		"transforms.route.type":          Prefix + "RegexRouter",
		"transforms.route.regex":         "orders",
		"transforms.route.replacement":   "orders-copy",
	}
	c, err := connect.NewRegistry().BuildChain(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Apply(rec(nil, "hi"))
	if err != nil {
		t.Fatal(err)
	}
	if want := obj("line", "hi", "off", int64(42)); !reflect.DeepEqual(out.Value, want) || out.Topic != "orders-copy" {
		t.Fatalf("got %#v on %q", out.Value, out.Topic)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  map[string]string
		want []string // "key: message fragment"
	}{
		{name: "unknown type", cfg: map[string]string{"transforms": "a", "transforms.a.type": "com.example.Nope"},
			want: []string{`transforms.a.type: unknown transform "com.example.Nope"`}},
		{name: "missing type", cfg: map[string]string{"transforms": "a"}, want: []string{"transforms.a.type: is required"}},
		{name: "missing required option", cfg: map[string]string{"transforms": "a", "transforms.a.type": Prefix + "ExtractField$Value"},
			want: []string{`transforms.a.field: missing required configuration "field"`}},
		{name: "bad cast spec", cfg: map[string]string{"transforms": "a", "transforms.a.type": Prefix + "Cast$Value", "transforms.a.spec": "x:decimal"},
			want: []string{"transforms.a.spec: invalid type found in casting spec: decimal"}},
		{name: "whole value cast with others", cfg: map[string]string{"transforms": "a", "transforms.a.type": Prefix + "Cast$Value", "transforms.a.spec": "int32,a:int8"},
			want: []string{"transforms.a.spec: cast transformations that specify a type to cast the entire value to may only specify a single cast"}},
		{name: "bad rename", cfg: map[string]string{"transforms": "a", "transforms.a.type": Prefix + "ReplaceField$Value", "transforms.a.renames": "abc"},
			want: []string{"transforms.a.renames: invalid rename mapping: abc"}},
		{name: "bad regex", cfg: map[string]string{"transforms": "a", "transforms.a.type": Prefix + "RegexRouter", "transforms.a.regex": "(", "transforms.a.replacement": "x"},
			want: []string{"transforms.a.regex: invalid regex"}},
		{name: "timestamp target", cfg: map[string]string{"transforms": "a", "transforms.a.type": Prefix + "TimestampConverter$Value", "transforms.a.target.type": "epoch"},
			want: []string{"transforms.a.target.type: unknown timestamp type in TimestampConverter: epoch"}},
		{name: "timestamp string needs format", cfg: map[string]string{"transforms": "a", "transforms.a.type": Prefix + "TimestampConverter$Value", "transforms.a.target.type": "string"},
			want: []string{"transforms.a.format: TimestampConverter requires format option"}},
		{name: "bad pattern", cfg: map[string]string{"transforms": "a", "transforms.a.type": Prefix + "TimestampRouter", "transforms.a.timestamp.format": "yyyyQQ"},
			want: []string{"transforms.a.timestamp.format: illegal pattern character 'Q'"}},
		{name: "header counts", cfg: map[string]string{"transforms": "a", "transforms.a.type": Prefix + "HeaderFrom$Value", "transforms.a.fields": "a,b", "transforms.a.headers": "h", "transforms.a.operation": "copy"},
			want: []string{"transforms.a.fields: 'fields' config must have the same number of elements as 'headers' config"}},
		{name: "header operation", cfg: map[string]string{"transforms": "a", "transforms.a.type": Prefix + "HeaderFrom$Value", "transforms.a.fields": "a", "transforms.a.headers": "h", "transforms.a.operation": "cut"},
			want: []string{"transforms.a.operation: invalid value cut"}},
		{name: "undefined predicate", cfg: map[string]string{"transforms": "a", "transforms.a.type": Prefix + "Filter", "transforms.a.predicate": "p"},
			want: []string{`transforms.a.predicate: predicate "p" is not defined`}},
		{name: "unknown predicate", cfg: map[string]string{"predicates": "p", "predicates.p.type": "x.Y"},
			want: []string{`predicates.p.type: unknown predicate "x.Y"`}},
		{name: "predicate option", cfg: map[string]string{"predicates": "p", "predicates.p.type": PredicatePrefix + "HasHeaderKey"},
			want: []string{`predicates.p.name: missing required configuration "name"`}},
		{name: "bad negate", cfg: map[string]string{"transforms": "a", "transforms.a.type": Prefix + "Filter", "transforms.a.negate": "yes"},
			want: []string{"transforms.a.negate: must be true or false"}},
		{name: "every problem at once", cfg: map[string]string{"transforms": "a,b", "transforms.a.type": "nope", "transforms.b.type": Prefix + "MaskField$Value"},
			want: []string{"transforms.a.type: unknown transform", `transforms.b.fields: missing required configuration "fields"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := connect.NewRegistry().BuildChain(tc.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			var ces connect.ConfigErrors
			if !asConfigErrors(err, &ces) || len(ces) != len(tc.want) {
				t.Fatalf("errors = %v, want %d config errors", err, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(ces[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, ces[i].Error(), w)
				}
			}
		})
	}
}

func asConfigErrors(err error, out *connect.ConfigErrors) bool {
	ces, ok := err.(connect.ConfigErrors)
	*out = ces
	return ok
}

// The API validates a connector configuration through the registry, so a
// bad transform is refused at create time with its key.
func TestValidateConfigIncludesTransforms(t *testing.T) {
	reg := connect.NewRegistry()
	if err := reg.Register(connect.Plugin{Class: "test.Sink", Kind: connect.Sink, NewSinkTask: func() connect.SinkTask { return nil }}); err != nil {
		t.Fatal(err)
	}
	err := reg.ValidateConfig("test.Sink", map[string]string{"topics": "a", "transforms": "x", "transforms.x.type": Prefix + "InsertField$Valeu"})
	if err == nil || !strings.Contains(err.Error(), `transforms.x.type: unknown transform "`+Prefix+`InsertField$Valeu"`) {
		t.Fatalf("ValidateConfig = %v", err)
	}
	ok := map[string]string{"topics": "a", "transforms": "x", "transforms.x.type": Prefix + "InsertField$Value", "transforms.x.topic.field": "t"}
	if err := reg.ValidateConfig("test.Sink", ok); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
}

// Patterns format as java.text.SimpleDateFormat does (ts is Tuesday
// 2024-03-05 14:07:09.123 UTC), and parse what they format.
func TestJavaPattern(t *testing.T) {
	midnight := time.Date(2024, 3, 10, 0, 30, 5, 7_000_000, time.UTC) // a Sunday
	noon := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		pattern string
		at      time.Time
		want    string
		parses  bool
	}{
		{"yyyyMMdd", ts, "20240305", true},
		{"yyyy-MM-dd'T'HH:mm:ss.SSSXXX", ts, "2024-03-05T14:07:09.123Z", true},
		{"yy/M/d h:mm a", ts, "24/3/5 2:07 PM", true},
		{"EEE, dd MMM yyyy", ts, "Tue, 05 Mar 2024", true},
		{"EEEE d MMMM", ts, "Tuesday 5 March", false}, // no year: parses into year 0
		{"'week' D", ts, "week 65", false},            // Go parses the day of year with three digits only
		{"DDD", ts, "065", true},
		{"HH''mm", ts, "14'07", true},
		// u is the day number of the week (Monday 1 … Sunday 7), not a year.
		{"u", ts, "2", false},
		{"u", midnight, "7", false},
		{"uu", ts, "02", false},
		// k is the hour of the day 1-24, K the hour of am/pm 0-11.
		{"k", ts, "14", false},
		{"k", midnight, "24", false},
		{"kk:mm", midnight, "24:30", false},
		{"K", ts, "2", false},
		{"K", noon, "0", false},
		{"KK a", midnight, "00 AM", false},
		{"h", noon, "12", true},
		{"hh", midnight, "12", true},
		// S counts milliseconds, padded to the letters' count.
		{"ss.S", midnight, "05.7", false},
		{"ss.SSS", midnight, "05.007", true},
	} {
		jp, err := compileJava(tc.pattern)
		if err != nil {
			t.Errorf("%s: %v", tc.pattern, err)
			continue
		}
		if got := jp.format(tc.at); got != tc.want {
			t.Errorf("%s at %v → %q, want %q", tc.pattern, tc.at, got, tc.want)
		}
		if !tc.parses {
			continue
		}
		back, err := jp.parse(tc.want)
		if err != nil {
			t.Errorf("%s: parse %q: %v", tc.pattern, tc.want, err)
		} else if got := jp.format(back); got != tc.want {
			t.Errorf("%s: %q parses to %v, which formats as %q", tc.pattern, tc.want, back, got)
		}
	}
	// u, k and K cannot be parsed through Go's layouts: a clear error, not a
	// wrong time.
	for _, p := range []string{"u", "kk:mm", "K a"} {
		jp, err := compileJava(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jp.parse("1"); err == nil || !strings.Contains(err.Error(), "can format timestamps but not parse them") {
			t.Errorf("%s: parse error %v", p, err)
		}
	}
	if _, err := compileJava("yyyyQQ"); err == nil || !strings.Contains(err.Error(), "illegal pattern character 'Q'") {
		t.Errorf("Q: %v", err)
	}
}

// Values converted with schemas.enable=true arrive as their payload (bytes
// fields decoded) and transform like schemaless maps.
func TestSchemaEnvelopePayloads(t *testing.T) {
	conv := &convert.JSON{}
	if err := conv.Configure(map[string]string{"schemas.enable": "true"}, false); err != nil {
		t.Fatal(err)
	}
	v, err := conv.ToValue("orders", []byte(`{"schema":{"type":"struct","fields":[{"field":"id","type":"int64"},{"field":"blob","type":"bytes"},{"field":"card","type":"string"}]},"payload":{"id":7,"blob":"AQI=","card":"4111"}}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{
		"transforms":             "mask,cast",
		"transforms.mask.type":   Prefix + "MaskField$Value",
		"transforms.mask.fields": "card",
		"transforms.cast.type":   Prefix + "Cast$Value",
		"transforms.cast.spec":   "id:string,blob:string",
	}
	c, err := connect.NewRegistry().BuildChain(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Apply(rec(nil, v))
	if err != nil {
		t.Fatal(err)
	}
	if want := obj("id", "7", "blob", "AQI=", "card", ""); !reflect.DeepEqual(out.Value, want) {
		t.Fatalf("value %#v, want %#v", out.Value, want)
	}
}

func TestApplySource(t *testing.T) {
	c, err := connect.NewRegistry().BuildChain(map[string]string{
		"transforms": "i,r", "transforms.i.type": Prefix + "InsertField$Value", "transforms.i.topic.field": "t",
		"transforms.r.type": Prefix + "RegexRouter", "transforms.r.regex": "raw-(.*)", "transforms.r.replacement": "$1",
	})
	if err != nil {
		t.Fatal(err)
	}
	sr := &connect.SourceRecord{Topic: "raw-users", Value: obj("id", 1), SourceOffset: map[string]any{"pos": 3}}
	out, err := c.ApplySource(sr, ts)
	if err != nil {
		t.Fatal(err)
	}
	if out.Topic != "users" || !reflect.DeepEqual(out.Value, obj("id", 1, "t", "raw-users")) || out.Partition != nil || out.SourceOffset["pos"] != 3 {
		t.Fatalf("got %+v", out)
	}
	off, err := connect.NewRegistry().BuildChain(map[string]string{"transforms": "i", "transforms.i.type": Prefix + "InsertField$Value", "transforms.i.offset.field": "o"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.ApplySource(sr, ts); err == nil || !strings.Contains(err.Error(), "only SinkRecord supported for [field insertion]") {
		t.Fatalf("offset.field on a source record: %v", err)
	}
}

// A transform option holding a config provider reference is checked by the
// worker, not refused at create time.
func TestValidateConfigLeavesReferencesToTheWorker(t *testing.T) {
	reg := connect.NewRegistry()
	if err := reg.Register(connect.Plugin{Class: "test.Sink", Kind: connect.Sink, NewSinkTask: func() connect.SinkTask { return nil }}); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{"topics": "a", "transforms": "c", "transforms.c.type": Prefix + "Cast$Value", "transforms.c.spec": "${env:CAST_SPEC}"}
	if err := reg.ValidateConfig("test.Sink", cfg); err != nil {
		t.Fatalf("refused: %v", err)
	}
}

// BenchmarkChain measures a typical chain: insert metadata, drop a field,
// cast, and a Filter whose predicate matches nothing.
func BenchmarkChain(b *testing.B) {
	c, err := connect.NewRegistry().BuildChain(map[string]string{
		"transforms":                  "ins,rep,cast,drop",
		"transforms.ins.type":         Prefix + "InsertField$Value",
		"transforms.ins.topic.field":  "topic",
		"transforms.ins.offset.field": "offset",
		"transforms.rep.type":         Prefix + "ReplaceField$Value",
		"transforms.rep.exclude":      "secret",
		"transforms.cast.type":        Prefix + "Cast$Value",
		"transforms.cast.spec":        "amount:float64",
		"transforms.drop.type":        Prefix + "Filter",
		"transforms.drop.predicate":   "tomb",
		"predicates":                  "tomb",
		"predicates.tomb.type":        PredicatePrefix + "RecordIsTombstone",
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r := rec(nil, map[string]any{"id": json.Number("1"), "amount": "12.5", "secret": "x", "name": "n"})
		if _, err := c.Apply(r); err != nil {
			b.Fatal(err)
		}
	}
}
