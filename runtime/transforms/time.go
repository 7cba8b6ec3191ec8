package transforms

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// javaPattern is a java.text.SimpleDateFormat pattern: it formats times
// letter by letter as Java does, and parses through the equivalent Go
// layout.
type javaPattern struct {
	pattern  string
	toks     []javaToken
	layout   string // for parsing; "" when the pattern cannot be parsed
	parseErr error  // why it cannot
}

// javaToken is a quoted literal or a run of one pattern letter.
type javaToken struct {
	lit    string
	letter byte
	n      int
}

// compileJava reads a SimpleDateFormat pattern. It supports the letters
// timestamps use (y Y u M L d D E a H k h K m s S z Z X) and quoted
// literals; others are an error.
func compileJava(p string) (*javaPattern, error) {
	jp := &javaPattern{pattern: p}
	for i := 0; i < len(p); {
		c := p[i]
		if c == '\'' {
			j := i + 1
			if j < len(p) && p[j] == '\'' { // '' is a literal quote
				jp.toks = append(jp.toks, javaToken{lit: "'"})
				i += 2
				continue
			}
			for j < len(p) && p[j] != '\'' {
				j++
			}
			if j >= len(p) {
				return nil, fmt.Errorf("unterminated quote in pattern %q", p)
			}
			jp.toks = append(jp.toks, javaToken{lit: p[i+1 : j]})
			i = j + 1
			continue
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			jp.toks = append(jp.toks, javaToken{lit: string(c)})
			i++
			continue
		}
		n := 1
		for i+n < len(p) && p[i+n] == c {
			n++
		}
		i += n
		if !strings.ContainsRune("yYuMLdDEaHkhKmsSzZX", rune(c)) {
			return nil, fmt.Errorf("illegal pattern character '%c' in %q", c, p)
		}
		jp.toks = append(jp.toks, javaToken{letter: c, n: n})
	}
	jp.layout, jp.parseErr = javaLayout(jp)
	return jp, nil
}

// pad renders n with at least width digits, as Java pads numeric fields.
func pad(n, width int) string {
	s := strconv.Itoa(n)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}

// format renders t (in UTC) as SimpleDateFormat would.
func (jp *javaPattern) format(t time.Time) string {
	t = t.UTC()
	var b strings.Builder
	for _, tk := range jp.toks {
		if tk.letter == 0 {
			b.WriteString(tk.lit)
			continue
		}
		n := tk.n
		switch tk.letter {
		case 'y', 'Y':
			if n == 2 {
				b.WriteString(pad(t.Year()%100, 2))
			} else {
				b.WriteString(pad(t.Year(), n))
			}
		case 'u': // day number of week, Monday 1 … Sunday 7
			b.WriteString(pad((int(t.Weekday())+6)%7+1, n))
		case 'M', 'L':
			switch {
			case n >= 4:
				b.WriteString(t.Month().String())
			case n == 3:
				b.WriteString(t.Month().String()[:3])
			default:
				b.WriteString(pad(int(t.Month()), n))
			}
		case 'd':
			b.WriteString(pad(t.Day(), n))
		case 'D':
			b.WriteString(pad(t.YearDay(), n))
		case 'E':
			if n >= 4 {
				b.WriteString(t.Weekday().String())
			} else {
				b.WriteString(t.Weekday().String()[:3])
			}
		case 'a':
			b.WriteString(t.Format("PM"))
		case 'H': // hour of day, 0-23
			b.WriteString(pad(t.Hour(), n))
		case 'k': // hour of day, 1-24
			h := t.Hour()
			if h == 0 {
				h = 24
			}
			b.WriteString(pad(h, n))
		case 'K': // hour in am/pm, 0-11
			b.WriteString(pad(t.Hour()%12, n))
		case 'h': // hour in am/pm, 1-12
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			b.WriteString(pad(h, n))
		case 'm':
			b.WriteString(pad(t.Minute(), n))
		case 's':
			b.WriteString(pad(t.Second(), n))
		case 'S': // milliseconds, as Java counts them
			b.WriteString(pad(t.Nanosecond()/1e6, n))
		case 'z':
			b.WriteString(t.Format("MST"))
		case 'Z':
			b.WriteString(t.Format("-0700"))
		case 'X':
			b.WriteString(t.Format([]string{"Z07", "Z0700", "Z07:00"}[min(n, 3)-1]))
		}
	}
	return b.String()
}

// parse reads s with the pattern, in UTC unless it names a zone.
func (jp *javaPattern) parse(s string) (time.Time, error) {
	if jp.parseErr != nil {
		return time.Time{}, jp.parseErr
	}
	return time.Parse(jp.layout, s)
}

// javaLayout translates a pattern into the Go layout that parses what it
// formats. Fractions of a second (S) must follow '.' or ','; u, k and K
// have no Go equivalent and are refused for parsing.
func javaLayout(jp *javaPattern) (string, error) {
	var b strings.Builder
	for _, tk := range jp.toks {
		if tk.letter == 0 {
			b.WriteString(tk.lit)
			continue
		}
		n := tk.n
		switch tk.letter {
		case 'y', 'Y':
			if n == 2 {
				b.WriteString("06")
			} else {
				b.WriteString("2006")
			}
		case 'M', 'L':
			b.WriteString([]string{"1", "01", "Jan", "January"}[min(n, 4)-1])
		case 'd':
			b.WriteString([]string{"2", "02"}[min(n, 2)-1])
		case 'D':
			b.WriteString("002")
		case 'E':
			if n >= 4 {
				b.WriteString("Monday")
			} else {
				b.WriteString("Mon")
			}
		case 'a':
			b.WriteString("PM")
		case 'H':
			b.WriteString("15")
		case 'h':
			b.WriteString([]string{"3", "03"}[min(n, 2)-1])
		case 'm':
			b.WriteString([]string{"4", "04"}[min(n, 2)-1])
		case 's':
			b.WriteString([]string{"5", "05"}[min(n, 2)-1])
		case 'S':
			s := b.String()
			if s == "" || (s[len(s)-1] != '.' && s[len(s)-1] != ',') {
				return "", fmt.Errorf("pattern %q: parsing needs fractions of a second (S) to follow '.' or ','", jp.pattern)
			}
			b.WriteString(strings.Repeat("0", n))
		case 'z':
			b.WriteString("MST")
		case 'Z':
			b.WriteString("-0700")
		case 'X':
			b.WriteString([]string{"Z07", "Z0700", "Z07:00"}[min(n, 3)-1])
		default: // u, k, K
			return "", fmt.Errorf("pattern %q: letter '%c' can format timestamps but not parse them", jp.pattern, tk.letter)
		}
	}
	return b.String(), nil
}

// timestampRouter is TimestampRouter.
type timestampRouter struct {
	format  string
	pattern *javaPattern
}

var _ connect.Transform = (*timestampRouter)(nil)

func newTimestampRouter(o *opts) connect.Transform {
	t := &timestampRouter{format: o.str("topic.format", "${topic}-${timestamp}")}
	tf := o.str("timestamp.format", "yyyyMMdd")
	p, err := compileJava(tf)
	if err != nil {
		o.bad("timestamp.format", "%v", err)
	}
	t.pattern = p
	return t
}

func (t *timestampRouter) Apply(r *connect.Record) (*connect.Record, error) {
	if r.Timestamp.IsZero() {
		return nil, fmt.Errorf("timestamp missing on record: %s", r.Coordinates())
	}
	ts := t.pattern.format(r.Timestamp)
	r.Topic = strings.ReplaceAll(strings.ReplaceAll(t.format, "${topic}", r.Topic), "${timestamp}", ts)
	return r, nil
}

// Target types of TimestampConverter.
const (
	tsString    = "string"
	tsUnix      = "unix"
	tsDate      = "Date"
	tsTime      = "Time"
	tsTimestamp = "Timestamp"
)

// timestampConverter is TimestampConverter$Key / TimestampConverter$Value.
type timestampConverter struct {
	side      side
	field     string
	target    string
	pattern   *javaPattern // nil when no format is set
	precision string
	cache     schemaCache
}

var _ connect.Transform = (*timestampConverter)(nil)

func newTimestampConverter(o *opts, s side) connect.Transform {
	t := &timestampConverter{side: s, field: o.str("field", "")}
	t.target = o.required("target.type")
	switch t.target {
	case tsString, tsUnix, tsDate, tsTime, tsTimestamp, "":
	default:
		o.bad("target.type", "unknown timestamp type in TimestampConverter: %s. Valid values are unix, Date, Time, Timestamp, string.", t.target)
	}
	if f := o.str("format", ""); strings.TrimSpace(f) != "" {
		p, err := compileJava(f)
		if err != nil {
			o.bad("format", "TimestampConverter requires a SimpleDateFormat-compatible pattern for string timestamps: %s (%v)", f, err)
		}
		t.pattern = p
	} else if t.target == tsString {
		o.bad("format", "TimestampConverter requires format option to be specified when using string timestamps")
	}
	t.precision = o.oneOf("unix.precision", "milliseconds", "seconds", "milliseconds", "microseconds", "nanoseconds")
	return t
}

func (t *timestampConverter) Apply(r *connect.Record) (*connect.Record, error) {
	v := t.side.get(r)
	if v == nil {
		return r, nil
	}
	if sc := t.side.schema(r); sc != nil {
		return t.applyWithSchema(r, sc, v)
	}
	if t.field == "" {
		cv, err := t.convert(v)
		if err != nil {
			return nil, err
		}
		t.side.set(r, cv)
		return r, nil
	}
	m, err := requireMap(v, "converting timestamp formats")
	if err != nil {
		return nil, err
	}
	out, err := t.convertField(m)
	if err != nil {
		return nil, err
	}
	t.side.set(r, out)
	return r, nil
}

// applyWithSchema converts with schemas as Kafka's TimestampConverter: the
// input's type comes from its schema (Timestamp, Date, Time, string or
// int64 unix time), and the converted value's schema is the target's
// (string, int64, or the Date, Time, Timestamp logical types), optional if
// the input's was.
func (t *timestampConverter) applyWithSchema(r *connect.Record, sc *connect.Schema, v any) (*connect.Record, error) {
	if t.field == "" {
		if err := timestampInput(sc); err != nil {
			return nil, err
		}
		cv, err := t.convert(v)
		if err != nil {
			return nil, err
		}
		upd, _ := t.cache.get(sc, func() (*connect.Schema, error) { return t.targetSchema(sc.Optional), nil })
		t.side.setWithSchema(r, upd, cv)
		return r, nil
	}
	m, err := requireStruct(sc, v, "converting timestamp formats")
	if err != nil {
		return nil, err
	}
	upd, err := t.cache.get(sc, func() (*connect.Schema, error) {
		f := sc.Field(t.field)
		if f == nil {
			return nil, fmt.Errorf("field %q is not in the value's schema", t.field)
		}
		if err := timestampInput(f.Schema); err != nil {
			return nil, fmt.Errorf("field %q: %w", t.field, err)
		}
		out := structLike(sc)
		out.Optional = sc.Optional
		for _, g := range sc.Fields {
			fs := g.Schema
			if g.Name == t.field {
				fs = t.targetSchema(g.Schema.Optional)
			}
			out.Fields = append(out.Fields, connect.Field{Name: g.Name, Schema: fs})
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	out, err := t.convertField(m)
	if err != nil {
		return nil, err
	}
	t.side.setWithSchema(r, upd, out)
	return r, nil
}

// timestampInput checks a schema is one TimestampConverter reads.
func timestampInput(s *connect.Schema) error {
	switch {
	case s.Name == connect.TimestampSchemaName, s.Name == connect.DateSchemaName, s.Name == connect.TimeSchemaName:
	case s.Name == "" && (s.Type == connect.SchemaString || s.Type == connect.SchemaInt64):
	default:
		return fmt.Errorf("schema %s %s does not correspond to a known timestamp type format", s.Type, s.Name)
	}
	return nil
}

// targetSchema is the schema of a converted timestamp.
func (t *timestampConverter) targetSchema(optional bool) *connect.Schema {
	switch t.target {
	case tsString:
		return primitive(connect.SchemaString, optional)
	case tsUnix:
		return primitive(connect.SchemaInt64, optional)
	case tsDate:
		return logicalSchema(connect.DateSchemaName, optional)
	case tsTime:
		return logicalSchema(connect.TimeSchemaName, optional)
	}
	return logicalSchema(connect.TimestampSchemaName, optional)
}

// toTime reads a timestamp: time.Time as is, numbers as unix time in the
// configured precision, strings with the configured format.
func (t *timestampConverter) toTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return time.UnixMilli(x.UnixMilli()).UTC(), nil
	case string:
		if t.pattern == nil {
			return time.Time{}, fmt.Errorf("TimestampConverter requires format option to be specified when using string timestamps")
		}
		ts, err := t.pattern.parse(x)
		if err != nil {
			return time.Time{}, fmt.Errorf("could not parse timestamp: value (%s) does not match pattern (%s): %w", x, t.pattern.pattern, err)
		}
		return time.UnixMilli(ts.UnixMilli()).UTC(), nil
	case json.Number, int64, int32, int, float64:
		var n int64
		switch y := x.(type) {
		case json.Number:
			var err error
			if n, err = y.Int64(); err != nil {
				return time.Time{}, fmt.Errorf("expected Unix timestamp to be a Long, but found %s", y)
			}
		case int64:
			n = y
		case int32:
			n = int64(y)
		case int:
			n = int64(y)
		case float64:
			n = int64(y)
		}
		// As in Kafka, timestamps are carried in milliseconds: finer
		// precisions are truncated.
		switch t.precision {
		case "seconds":
			n *= 1000
		case "microseconds":
			n /= 1000
		case "nanoseconds":
			n /= 1_000_000
		}
		return time.UnixMilli(n).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("TimestampConverter does not support %T objects as timestamps", v)
}

// convertField returns a copy of struct m with its field converted.
func (t *timestampConverter) convertField(m map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(m))
	for k, x := range m {
		out[k] = x
	}
	cv, err := t.convert(m[t.field])
	if err != nil {
		return nil, fmt.Errorf("field %q: %w", t.field, err)
	}
	out[t.field] = cv
	return out, nil
}

func (t *timestampConverter) convert(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	ts, err := t.toTime(v)
	if err != nil {
		return nil, err
	}
	switch t.target {
	case tsString:
		return t.pattern.format(ts), nil
	case tsUnix:
		switch t.precision {
		case "seconds":
			return ts.Unix(), nil
		case "microseconds":
			return ts.UnixMicro(), nil
		case "nanoseconds":
			return ts.UnixNano(), nil
		}
		return ts.UnixMilli(), nil
	case tsDate:
		return time.Date(ts.Year(), ts.Month(), ts.Day(), 0, 0, 0, 0, time.UTC), nil
	case tsTime:
		return time.Date(1970, 1, 1, ts.Hour(), ts.Minute(), ts.Second(), ts.Nanosecond()/1e6*1e6, time.UTC), nil
	}
	return time.UnixMilli(ts.UnixMilli()).UTC(), nil
}

// regexRouter is RegexRouter: a topic the regex matches entirely is
// renamed with the replacement ($1 refers to a group).
type regexRouter struct {
	re   *regexp.Regexp
	repl string
}

var _ connect.Transform = (*regexRouter)(nil)

func newRegexRouter(o *opts) connect.Transform {
	t := &regexRouter{re: o.regex("regex")}
	t.repl = javaReplacement(o.required("replacement"))
	return t
}

func (t *regexRouter) Apply(r *connect.Record) (*connect.Record, error) {
	if m := t.re.FindStringSubmatchIndex(r.Topic); m != nil {
		r.Topic = string(t.re.ExpandString(nil, t.repl, r.Topic, m))
	}
	return r, nil
}

// javaReplacement rewrites a java.util.regex replacement ($1, ${name}, \$)
// into Go's Expand syntax.
func javaReplacement(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			if s[i] == '$' {
				b.WriteString("$$")
			} else {
				b.WriteByte(s[i])
			}
		case c == '$' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			n, _ := strconv.Atoi(s[i+1 : j])
			fmt.Fprintf(&b, "${%d}", n)
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
