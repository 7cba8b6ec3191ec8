package s3sink

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// partitioner names the directory (Confluent's "encoded partition") of a
// record's object, e.g. partition=3, region=eu or year=2024/month=05.
type partitioner interface {
	encode(r *connect.Record, ts time.Time) (string, error)
}

// defaultPartitioner names partition=<p>, its names kept: building one per
// record was the JSON path's one allocation per record.
type defaultPartitioner struct{ names []string }

func (d *defaultPartitioner) encode(r *connect.Record, _ time.Time) (string, error) {
	p := int(r.Partition)
	if p < 0 || p >= 1<<16 {
		return "partition=" + strconv.Itoa(p), nil
	}
	if p >= len(d.names) {
		d.names = append(d.names, make([]string, p+1-len(d.names))...)
	}
	if d.names[p] == "" {
		d.names[p] = "partition=" + strconv.Itoa(p)
	}
	return d.names[p], nil
}

type fieldPartitioner struct {
	fields []string
	delim  string
}

func (p fieldPartitioner) encode(r *connect.Record, _ time.Time) (string, error) {
	parts := make([]string, len(p.fields))
	for i, f := range p.fields {
		v, ok := lookupField(r.Value, f)
		if !ok {
			return "", fmt.Errorf("partition field %q not found in the value at %s", f, r.Coordinates())
		}
		switch x := v.(type) {
		case string, bool, json.Number, int8, int16, int32, int64, int, float64, float32:
			parts[i] = f + "=" + string(connect.FormatValue(x))
		default:
			return "", fmt.Errorf("partition field %q at %s is a %T; only strings, numbers and booleans partition", f, r.Coordinates(), v)
		}
	}
	return strings.Join(parts, p.delim), nil
}

type timePartitioner struct {
	dur    int64 // ms
	layout []jodaToken
	loc    *time.Location
}

func (p timePartitioner) encode(_ *connect.Record, ts time.Time) (string, error) {
	ms := ts.UnixMilli()
	_, off := ts.In(p.loc).Zone()
	local := ms + int64(off)*1000
	floored := local - mod(local, p.dur)
	return formatJoda(p.layout, time.UnixMilli(floored-int64(off)*1000).In(p.loc)), nil
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// newPartitioner builds partitioner.class, adding what it lacks to p (nil
// then).
func newPartitioner(cfg map[string]string, delim string, p *problems) partitioner {
	class := cfg[KeyPartitioner]
	switch class {
	case "", DefaultPartitioner:
		return &defaultPartitioner{}
	case FieldPartitioner:
		fields := connect.SplitList(cfg[KeyPartitionField])
		if len(fields) == 0 {
			p.add(KeyPartitionField, "is required with %s=%s", KeyPartitioner, FieldPartitioner)
			return nil
		}
		return fieldPartitioner{fields: fields, delim: delim}
	}
	dur, format := strings.TrimSpace(cfg[KeyPartitionDur]), cfg[KeyPathFormat]
	switch class {
	case DailyPartitioner:
		dur, format = "86400000", "'year'=YYYY/'month'=MM/'day'=dd"
	case HourlyPartitioner:
		dur, format = "3600000", "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH"
	case TimeBasedPartitioner:
	default:
		p.add(KeyPartitioner, "%q is not supported", class)
		return nil
	}
	if delim != "/" {
		format = strings.ReplaceAll(format, "/", delim)
	}
	ok := true
	n, err := strconv.ParseInt(dur, 10, 64)
	switch {
	case dur == "" || dur == "-1": // unset: -1 is the default
		p.add(KeyPartitionDur, "is required with %s=%s: the length of a time partition in ms, e.g. 3600000 for hourly", KeyPartitioner, class)
		ok = false
	case err != nil || n <= 0:
		p.add(KeyPartitionDur, "must be > 0 with %s=%s, got %q", KeyPartitioner, class, dur)
		ok = false
	}
	var layout []jodaToken
	if strings.TrimSpace(format) == "" {
		p.add(KeyPathFormat, "is required with %s=%s", KeyPartitioner, class)
		ok = false
	} else if layout, err = parseJoda(format); err != nil {
		p.add(KeyPathFormat, "%v", err)
		ok = false
	}
	// As Confluent's time-based partitioners, both are required.
	tz, locale := strings.TrimSpace(cfg[KeyTimezone]), strings.TrimSpace(cfg[KeyLocale])
	if tz == "" {
		p.add(KeyTimezone, "is required with %s=%s, e.g. UTC", KeyPartitioner, class)
		ok = false
	}
	if locale == "" {
		p.add(KeyLocale, "is required with %s=%s, e.g. en-US", KeyPartitioner, class)
		ok = false
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		p.add(KeyTimezone, "unknown time zone %q", tz)
		ok = false
	}
	if !ok {
		return nil
	}
	return timePartitioner{dur: n, layout: layout, loc: loc}
}

// jodaToken is a literal (letter 0) or a field letter repeated count times.
type jodaToken struct {
	letter  byte
	count   int
	literal string
}

// parseJoda parses the numeric subset of Joda-Time's DateTimeFormat:
// y/Y (year), M (month), d (day), H (hour), m (minute), s (second), quoted
// literals; other characters are kept as they are.
func parseJoda(p string) ([]jodaToken, error) {
	var out []jodaToken
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '\'':
			j := i + 1
			var lit strings.Builder
			for ; j < len(p); j++ {
				if p[j] == '\'' {
					if j+1 < len(p) && p[j+1] == '\'' {
						lit.WriteByte('\'')
						j++
						continue
					}
					break
				}
				lit.WriteByte(p[j])
			}
			if j >= len(p) {
				return nil, fmt.Errorf("unterminated quote in %q", p)
			}
			if i+1 == j {
				lit.WriteByte('\'') // '' is a quote
			}
			out = append(out, jodaToken{literal: lit.String()})
			i = j + 1
		case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			j := i
			for j < len(p) && p[j] == c {
				j++
			}
			n := j - i
			switch c {
			case 'y', 'Y', 'd', 'H', 'm', 's':
			case 'M':
				if n > 2 {
					return nil, fmt.Errorf("month names (%s) are not supported in %q; use MM", p[i:j], p)
				}
			default:
				return nil, fmt.Errorf("pattern letter %q is not supported in %q; supported: y Y M d H m s and 'quoted text'", c, p)
			}
			out = append(out, jodaToken{letter: c, count: n})
			i = j
		default:
			out = append(out, jodaToken{literal: string(c)})
			i++
		}
	}
	return out, nil
}

func formatJoda(layout []jodaToken, t time.Time) string {
	var b strings.Builder
	for _, tok := range layout {
		if tok.letter == 0 {
			b.WriteString(tok.literal)
			continue
		}
		var v int
		switch tok.letter {
		case 'y', 'Y':
			v = t.Year()
			if tok.count == 2 {
				v %= 100
			}
		case 'M':
			v = int(t.Month())
		case 'd':
			v = t.Day()
		case 'H':
			v = t.Hour()
		case 'm':
			v = t.Minute()
		case 's':
			v = t.Second()
		}
		fmt.Fprintf(&b, "%0*d", tok.count, v)
	}
	return b.String()
}

// lookupField finds a dotted path in a map value.
func lookupField(v any, path string) (any, bool) {
	for _, name := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[name]; !ok {
			return nil, false
		}
	}
	return v, true
}

// recordTime returns a record's time per timestamp.extractor. A tombstone
// (written with behavior.on.null.values=write) has no field: it takes its
// Kafka timestamp unless the extractor is Wallclock, as Confluent's
// TombstoneTimestampExtractor.
func (s *settings) recordTime(r *connect.Record, now time.Time, tomb bool) (time.Time, error) {
	extractor := s.extractor
	if tomb && extractor == "RecordField" {
		extractor = "Record"
	}
	switch extractor {
	case "Record":
		if r.Timestamp.IsZero() {
			return time.Time{}, fmt.Errorf("record at %s has no timestamp (timestamp.extractor=Record)", r.Coordinates())
		}
		return r.Timestamp, nil
	case "RecordField":
		v, ok := lookupField(r.Value, s.tsField)
		if !ok {
			return time.Time{}, fmt.Errorf("timestamp field %q not found in the value at %s", s.tsField, r.Coordinates())
		}
		switch x := v.(type) {
		case time.Time:
			return x, nil
		case json.Number:
			if n, err := x.Int64(); err == nil {
				return time.UnixMilli(n), nil
			}
		case float64:
			return time.UnixMilli(int64(x)), nil
		case int64:
			return time.UnixMilli(x), nil
		case int32:
			return time.UnixMilli(int64(x)), nil
		case string:
			if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return t, nil
			}
			if n, err := strconv.ParseInt(x, 10, 64); err == nil {
				return time.UnixMilli(n), nil
			}
		}
		return time.Time{}, fmt.Errorf("timestamp field %q at %s is %v; want epoch ms or an RFC 3339 time", s.tsField, r.Coordinates(), v)
	}
	return now, nil
}
