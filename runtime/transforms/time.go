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

// javaLayout translates a java.text.SimpleDateFormat pattern into a Go time
// layout. It supports the letters timestamps use (y M d D E a H k h K m s S
// z Z X) and quoted literals; others are an error.
func javaLayout(p string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(p); {
		c := p[i]
		if c == '\'' {
			j := i + 1
			if j < len(p) && p[j] == '\'' { // '' is a literal quote
				b.WriteByte('\'')
				i += 2
				continue
			}
			for j < len(p) && p[j] != '\'' {
				j++
			}
			if j >= len(p) {
				return "", fmt.Errorf("unterminated quote in pattern %q", p)
			}
			b.WriteString(p[i+1 : j])
			i = j + 1
			continue
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			b.WriteByte(c)
			i++
			continue
		}
		n := 1
		for i+n < len(p) && p[i+n] == c {
			n++
		}
		i += n
		switch c {
		case 'y', 'Y', 'u':
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
		case 'H', 'k':
			b.WriteString("15")
		case 'h', 'K':
			b.WriteString([]string{"3", "03"}[min(n, 2)-1])
		case 'm':
			b.WriteString([]string{"4", "04"}[min(n, 2)-1])
		case 's':
			b.WriteString([]string{"5", "05"}[min(n, 2)-1])
		case 'S':
			s := b.String()
			if s == "" || (s[len(s)-1] != '.' && s[len(s)-1] != ',') {
				return "", fmt.Errorf("pattern %q: fractions of a second (S) must follow '.' or ','", p)
			}
			b.WriteString(strings.Repeat("0", n))
		case 'z':
			b.WriteString("MST")
		case 'Z':
			b.WriteString("-0700")
		case 'X':
			b.WriteString([]string{"Z07", "Z0700", "Z07:00"}[min(n, 3)-1])
		default:
			return "", fmt.Errorf("illegal pattern character '%c' in %q", c, p)
		}
	}
	return b.String(), nil
}

// timestampRouter is TimestampRouter.
type timestampRouter struct {
	format string
	layout string
}

var _ connect.Transform = (*timestampRouter)(nil)

func newTimestampRouter(o *opts) connect.Transform {
	t := &timestampRouter{format: o.str("topic.format", "${topic}-${timestamp}")}
	tf := o.str("timestamp.format", "yyyyMMdd")
	l, err := javaLayout(tf)
	if err != nil {
		o.bad("timestamp.format", "%v", err)
	}
	t.layout = l
	return t
}

func (t *timestampRouter) Apply(r *connect.Record) (*connect.Record, error) {
	if r.Timestamp.IsZero() {
		return nil, fmt.Errorf("timestamp missing on record: %s", r.Coordinates())
	}
	ts := r.Timestamp.UTC().Format(t.layout)
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
	layout    string // "" when no format is set
	pattern   string // the format as configured
	precision string
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
		t.pattern = f
		l, err := javaLayout(f)
		if err != nil {
			o.bad("format", "TimestampConverter requires a SimpleDateFormat-compatible pattern for string timestamps: %s (%v)", f, err)
		}
		t.layout = l
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
	out := make(map[string]any, len(m))
	for k, x := range m {
		out[k] = x
	}
	cv, err := t.convert(m[t.field])
	if err != nil {
		return nil, fmt.Errorf("field %q: %w", t.field, err)
	}
	out[t.field] = cv
	t.side.set(r, out)
	return r, nil
}

// toTime reads a timestamp: time.Time as is, numbers as unix time in the
// configured precision, strings with the configured format.
func (t *timestampConverter) toTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return time.UnixMilli(x.UnixMilli()).UTC(), nil
	case string:
		if t.layout == "" {
			return time.Time{}, fmt.Errorf("TimestampConverter requires format option to be specified when using string timestamps")
		}
		ts, err := time.Parse(t.layout, x)
		if err != nil {
			return time.Time{}, fmt.Errorf("could not parse timestamp: value (%s) does not match pattern (%s): %w", x, t.pattern, err)
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
		return ts.Format(t.layout), nil
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
