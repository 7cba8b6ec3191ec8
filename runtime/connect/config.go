package connect

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ConfigType is the type of a configuration value, as Kafka Connect's
// ConfigDef names them. Values are always strings on the wire; the type says
// how they must parse.
type ConfigType string

// Configuration value types.
const (
	TypeString   ConfigType = "STRING"
	TypeInt      ConfigType = "INT"
	TypeLong     ConfigType = "LONG"
	TypeDouble   ConfigType = "DOUBLE"
	TypeBoolean  ConfigType = "BOOLEAN"
	TypeList     ConfigType = "LIST" // comma-separated
	TypePassword ConfigType = "PASSWORD"
	TypeClass    ConfigType = "CLASS"
)

// ConfigField describes one configuration key of a plugin. It is data, so a
// configuration can be validated and documented without running the plugin.
type ConfigField struct {
	Name     string
	Type     ConfigType
	Default  string // used when the key is absent; "" means no default
	Required bool
	Secret   bool // never logged nor returned unredacted
	Doc      string
	// Validate, if set, checks a present (or defaulted) value after its type
	// has been checked. Its error message should say what is accepted.
	Validate func(value string) error
}

// ConfigError is one problem with one configuration key.
type ConfigError struct {
	Key     string
	Message string
}

// Error renders the problem as "key: message".
func (e *ConfigError) Error() string { return e.Key + ": " + e.Message }

// ConfigErrors is every problem found in a configuration.
type ConfigErrors []*ConfigError

// Error renders every problem, one per line.
func (es ConfigErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap exposes the problems to errors.Is and errors.As.
func (es ConfigErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

func (es *ConfigErrors) add(key, format string, args ...any) {
	*es = append(*es, &ConfigError{Key: key, Message: fmt.Sprintf(format, args...)})
}

// checkType checks that v parses as t.
func checkType(t ConfigType, v string) error {
	switch t {
	case TypeInt:
		if _, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32); err != nil {
			return fmt.Errorf("must be an integer, got %q", v)
		}
	case TypeLong:
		if _, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
			return fmt.Errorf("must be an integer, got %q", v)
		}
	case TypeDouble:
		if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return fmt.Errorf("must be a number, got %q", v)
		}
	case TypeBoolean:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "false":
		default:
			return fmt.Errorf("must be true or false, got %q", v)
		}
	}
	return nil
}

// validateFields checks cfg against fields, adding every problem to es.
func validateFields(es *ConfigErrors, fields []ConfigField, cfg map[string]string) {
	for _, f := range fields {
		v, ok := cfg[f.Name]
		if !ok || (strings.TrimSpace(v) == "" && f.Type != TypeString && f.Type != TypePassword) {
			if f.Required {
				es.add(f.Name, "is required")
				continue
			}
			if f.Default == "" {
				continue
			}
			v = f.Default
		}
		if HasConfigReference(v) {
			continue // resolved by the worker's config providers; checked there
		}
		if err := checkType(f.Type, v); err != nil {
			es.add(f.Name, "%s", err.Error())
			continue
		}
		if f.Required && strings.TrimSpace(v) == "" {
			es.add(f.Name, "is required")
			continue
		}
		if f.Validate != nil {
			if err := f.Validate(v); err != nil {
				es.add(f.Name, "%s", err.Error())
			}
		}
	}
}

// WithDefaults returns a copy of cfg with every absent field's default
// filled in.
func WithDefaults(fields []ConfigField, cfg map[string]string) map[string]string {
	out := make(map[string]string, len(cfg)+len(fields))
	for k, v := range cfg {
		out[k] = v
	}
	for _, f := range fields {
		if _, ok := out[f.Name]; !ok && f.Default != "" {
			out[f.Name] = f.Default
		}
	}
	return out
}

// OneOf returns a Validate func accepting only the given values.
func OneOf(values ...string) func(string) error {
	return func(v string) error {
		for _, ok := range values {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s, got %q", strings.Join(values, ", "), v)
	}
}

// AtLeast returns a Validate func accepting integers ≥ min.
func AtLeast(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("must be an integer, got %q", v)
		}
		if n < min {
			return fmt.Errorf("must be ≥ %d, got %d", min, n)
		}
		return nil
	}
}

// Framework configuration keys every sink connector understands; the runtime
// reads them, connectors may ignore them.
const (
	KeyConnectorClass  = "connector.class"
	KeyTasksMax        = "tasks.max"
	KeyTopics          = "topics"
	KeyTopicsRegex     = "topics.regex"
	KeyKeyConverter    = "key.converter"
	KeyValueConverter  = "value.converter"
	KeyHeaderConverter = "header.converter"
	KeyErrorsTolerance = "errors.tolerance"
	KeyDLQTopic        = "errors.deadletterqueue.topic.name"
	KeyDLQReplication  = "errors.deadletterqueue.topic.replication.factor"
	KeyDLQHeaders      = "errors.deadletterqueue.context.headers.enable"
	KeyErrorsLog       = "errors.log.enable"
	// KeyErrorsLogMessages adds a failed record's key, value and headers to
	// the errors.log.enable log line.
	KeyErrorsLogMessages = "errors.log.include.messages"
	KeyOffsetFlushMs     = "offset.flush.interval.ms"

	KeyErrorsRetryTimeout  = "errors.retry.timeout"
	KeyErrorsRetryMaxDelay = "errors.retry.delay.max.ms"
)

func isConverter(v string) error {
	for _, c := range ConverterClasses() {
		if v == c {
			return nil
		}
	}
	return fmt.Errorf("unsupported converter %q; supported: %s", v, strings.Join(ConverterClasses(), ", "))
}

func isHeaderConverter(v string) error {
	for _, c := range HeaderConverterClasses() {
		if v == c {
			return nil
		}
	}
	return fmt.Errorf("unsupported header converter %q; supported: %s", v, strings.Join(HeaderConverterClasses(), ", "))
}

// configRef matches a config provider reference, ${provider:[path:]key}.
var configRef = regexp.MustCompile(`\$\{([^}]*?):(([^}]*?):)?([^}]*?)\}`)

// HasConfigReference reports whether v holds a config provider reference
// such as ${env:NAME} or ${file:/path:key}, which only the worker resolves.
func HasConfigReference(v string) bool { return configRef.MatchString(v) }

// SinkFrameworkConfig is the spec of the framework keys of a sink connector.
// The registry checks them for every sink, in addition to the plugin's own.
var SinkFrameworkConfig = slices.Concat([]ConfigField{
	{Name: KeyTasksMax, Type: TypeInt, Default: "1", Validate: AtLeast(1), Doc: "maximum number of tasks"},
	{Name: KeyTopics, Type: TypeList, Doc: "topics to consume, comma-separated (this or topics.regex)"},
	{Name: KeyTopicsRegex, Type: TypeString, Doc: "regular expression of topics to consume, matched against a whole topic name as Kafka does (this or topics)", Validate: func(v string) error {
		if _, err := TopicsRegex(v); err != nil {
			return fmt.Errorf("is not a valid regular expression: %v", err)
		}
		return nil
	}},
	{Name: KeyKeyConverter, Type: TypeClass, Validate: isConverter, Doc: "converter of record keys (overrides the worker configuration)"},
	{Name: KeyValueConverter, Type: TypeClass, Validate: isConverter, Doc: "converter of record values (overrides the worker configuration)"},
	{Name: KeyHeaderConverter, Type: TypeClass, Validate: isHeaderConverter, Doc: "converter of record headers (overrides the worker configuration; default SimpleHeaderConverter)"},
}, JSONConverterFields, []ConfigField{
	{Name: KeyErrorsTolerance, Type: TypeString, Default: "none", Validate: OneOf("none", "all"), Doc: "none: a record that cannot be converted fails the task; all: it is skipped"},
	{Name: KeyDLQTopic, Type: TypeString, Doc: "topic that receives records skipped under errors.tolerance=all"},
	{Name: KeyDLQReplication, Type: TypeInt, Doc: "replication factor of the dead letter queue topic if it is created (default: the broker's)"},
	{Name: KeyDLQHeaders, Type: TypeBoolean, Default: "false", Doc: "add __connect.errors.* headers to dead-lettered records"},
	{Name: KeyErrorsLog, Type: TypeBoolean, Default: "false", Doc: "log every record that fails (converter, transform, or reported by the task) with its coordinates, under either tolerance"},
	{Name: KeyErrorsLogMessages, Type: TypeBoolean, Default: "false", Doc: "with errors.log.enable, log the failed record's key, value and headers too (resolved secrets redacted)"},
	RetryTimeoutField, RetryMaxDelayField,
	{Name: KeyOffsetFlushMs, Type: TypeLong, Validate: AtLeast(1), Doc: "how often durable offsets are committed (default 60000)"},
})

// JSONConverterFields are the JsonConverter properties a connector may set
// for its key and value converters.
var JSONConverterFields = []ConfigField{
	{Name: KeyKeyConverter + ".schemas.enable", Type: TypeBoolean, Doc: "JsonConverter: keys carry a schema/payload envelope"},
	{Name: KeyValueConverter + ".schemas.enable", Type: TypeBoolean, Doc: "JsonConverter: values carry a schema/payload envelope"},
	{Name: KeyKeyConverter + ".decimal.format", Type: TypeString, Validate: CheckDecimalFormat, Doc: "JsonConverter: BASE64 (default) or NUMERIC, how Decimal keys are written"},
	{Name: KeyValueConverter + ".decimal.format", Type: TypeString, Validate: CheckDecimalFormat, Doc: "JsonConverter: BASE64 (default) or NUMERIC, how Decimal values are written"},
	{Name: KeyKeyConverter + ".replace.null.with.default", Type: TypeBoolean, Doc: "JsonConverter: a null key field with a schema default reads and writes as the default (default true)"},
	{Name: KeyValueConverter + ".replace.null.with.default", Type: TypeBoolean, Doc: "JsonConverter: a null value field with a schema default reads and writes as the default (default true)"},
}

// CheckDecimalFormat checks a JsonConverter decimal.format value: BASE64 or
// NUMERIC, in any case, as Kafka accepts it.
func CheckDecimalFormat(v string) error {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "BASE64", "NUMERIC":
		return nil
	}
	return fmt.Errorf("must be BASE64 or NUMERIC, got %q", v)
}

func validateSinkFramework(es *ConfigErrors, cfg map[string]string) {
	validateFields(es, SinkFrameworkConfig, cfg)
	topics := strings.TrimSpace(cfg[KeyTopics])
	regex := strings.TrimSpace(cfg[KeyTopicsRegex])
	switch {
	case topics == "" && regex == "":
		es.add(KeyTopics, "one of topics or topics.regex is required")
	case topics != "" && regex != "":
		es.add(KeyTopicsRegex, "set either topics or topics.regex, not both")
	}
	if dlq := strings.TrimSpace(cfg[KeyDLQTopic]); dlq != "" {
		for _, t := range SplitList(topics) {
			if t == dlq {
				es.add(KeyDLQTopic, "must not be one of the topics the connector consumes (%q)", dlq)
			}
		}
		// A sink reading its own dead letter queue would loop on every
		// record it cannot handle (Kafka Connect refuses it too).
		if re, err := TopicsRegex(regex); regex != "" && err == nil && re.MatchString(dlq) {
			es.add(KeyDLQTopic, "must not be a topic the connector consumes: %q matches topics.regex %q", dlq, regex)
		}
	}
}

// TopicsRegex compiles a topics.regex value as Kafka applies it: the
// expression must match a topic's whole name (Java's Pattern.matches), so
// "orders" reads orders and not orders-dlq.
func TopicsRegex(expr string) (*regexp.Regexp, error) {
	return regexp.Compile(AnchoredTopicsRegex(expr))
}

// AnchoredTopicsRegex returns expr anchored to match a whole topic name.
func AnchoredTopicsRegex(expr string) string { return `^(?:` + strings.TrimSpace(expr) + `)$` }

// SplitList splits a comma-separated list, trimming blanks and dropping
// empty items.
func SplitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
