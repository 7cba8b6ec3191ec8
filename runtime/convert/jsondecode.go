package convert

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// parseJSON decodes one JSON value into what encoding/json's Decoder with
// UseNumber produces for an `any` (map[string]any, []any, string,
// json.Number, bool, nil), with the same rules: invalid UTF-8 and lone
// surrogates become U+FFFD, the last of duplicate keys wins, nesting stops
// at 10000 levels. It is the converter's hot path: reflection-free, and
// the strings (keys too) and numbers are parts of text (data as a string:
// a copy, or data itself), so they cost no allocation each (a string with
// escapes is the exception); their interface values share a few backing
// arrays (box); maps and slices are one each. Nothing is shared with
// another call's values. It returns where the value ends.
func parseJSON(data []byte, text string, keys *keyCache) (any, int, error) {
	p := jsonParser{data: data, text: text, keys: keys}
	if keys != nil {
		keys.n = 0
	}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, p.i, err
	}
	return v, p.i, nil
}

const maxJSONDepth = 10000

type jsonParser struct {
	data []byte
	text string // data as a string: strings and numbers are its substrings
	i    int
	// headers backs the string and number values read (see box): filled
	// in order, a new array when it is full.
	headers []string
	// keys, when text is the record's own memory, gives the objects' keys
	// memory of their own (see keyCache).
	keys *keyCache
}

func (p *jsonParser) skipSpace() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: "+format, append([]any{p.i}, args...)...)
}

func (p *jsonParser) unexpected() error {
	if p.i >= len(p.data) {
		return errors.New("unexpected end of JSON input")
	}
	return p.errorf("invalid character %s", quoteChar(p.data[p.i]))
}

func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

func (p *jsonParser) value(depth int) (any, error) {
	if p.i >= len(p.data) {
		return nil, p.unexpected()
	}
	switch c := p.data[p.i]; {
	case c == '{':
		if depth >= maxJSONDepth {
			return nil, errors.New("exceeded max depth")
		}
		return p.object(depth + 1)
	case c == '[':
		if depth >= maxJSONDepth {
			return nil, errors.New("exceeded max depth")
		}
		return p.array(depth + 1)
	case c == '"':
		str, err := p.str()
		if err != nil {
			return nil, err
		}
		return p.box(stringType, str), nil
	case c == '-' || c >= '0' && c <= '9':
		num, err := p.number()
		if err != nil {
			return nil, err
		}
		return p.box(numberType, num), nil
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	}
	return nil, p.unexpected()
}

// eface is the layout of an interface value without methods (an any): its
// dynamic type, and a pointer to its value.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// The dynamic types of string and json.Number values.
var (
	stringType = typeOf("")
	numberType = typeOf(json.Number(""))
)

func typeOf(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

// box returns s as an interface value of type typ (string or json.Number).
// Converting a string to an interface copies its two-word header to the
// heap, one allocation per value, which was a fifth of the converter's
// allocations on small records. box copies the header into p.headers
// instead and points the interface at that copy: the same value, with one
// allocation for several. An element of p.headers is never written again
// (as the copy a conversion allocates never is), and p.headers is this
// call's own, so values stay valid for as long as anyone holds them; a
// value keeps its array (a few dozen headers at most) alive, as it keeps
// the copy of data its string is part of.
func (p *jsonParser) box(typ unsafe.Pointer, s string) any {
	if len(p.headers) == cap(p.headers) {
		p.headers = make([]string, 0, min(max(2*cap(p.headers), 4), 64))
	}
	p.headers = append(p.headers, s)
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, unsafe.Pointer(&p.headers[len(p.headers)-1])
	return v
}

func (p *jsonParser) literal(lit string) error {
	for j := 0; j < len(lit); j++ {
		if p.i >= len(p.data) || p.data[p.i] != lit[j] {
			return p.unexpected()
		}
		p.i++
	}
	return nil
}

func (p *jsonParser) object(depth int) (any, error) {
	p.i++ // {
	m := make(map[string]any)
	p.skipSpace()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		return m, nil
	}
	for {
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return nil, p.unexpected()
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		if p.keys != nil {
			k = p.keys.intern(k)
		}
		p.skipSpace()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return nil, p.unexpected()
		}
		p.i++
		p.skipSpace()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		m[k] = v
		if end, err := p.separator('}'); err != nil {
			return nil, err
		} else if end {
			return m, nil
		}
	}
}

func (p *jsonParser) array(depth int) (any, error) {
	p.i++ // [
	a := make([]any, 0)
	p.skipSpace()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		return a, nil
	}
	for {
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		if end, err := p.separator(']'); err != nil {
			return nil, err
		} else if end {
			return a, nil
		}
	}
}

// keyCache gives the keys of the objects decoded from a record's own
// memory (values that share the record's bytes, see JSON) memory of their
// own. Keys outlive records: a sink keeps them in the schemas it derives,
// the open files of its partitions, and caches, and a key that was a part
// of its record's bytes would keep the whole fetch they came in (a
// megabyte) alive for each one; values are written and dropped. The keys
// of one record are mostly the keys of the last, in the same order, so the
// n-th key read is first compared with the last record's n-th (no hashing,
// no allocation), then looked up among all the keys seen, and copied only
// when new. A converter keeps one (JSON.keys).
type keyCache struct {
	byPos []string          // the n-th key of the last record
	seen  map[string]string // every key seen, up to maxKeysSeen
	n     int               // keys read of the current record
}

const (
	maxKeysByPos = 256
	maxKeysSeen  = 4096
)

// intern returns k in memory of its own: a key seen before, or a copy.
func (c *keyCache) intern(k string) string {
	i := c.n
	c.n++
	if i < len(c.byPos) && c.byPos[i] == k {
		return c.byPos[i]
	}
	own, ok := c.seen[k]
	if !ok {
		own = strings.Clone(k)
		if c.seen == nil || len(c.seen) >= maxKeysSeen {
			c.seen = make(map[string]string) // full (keys that are data, not names): start over
		}
		c.seen[own] = own
	}
	switch {
	case i < len(c.byPos):
		c.byPos[i] = own
	case i == len(c.byPos) && i < maxKeysByPos:
		c.byPos = append(c.byPos, own)
	}
	return own
}

// separator reads what follows an element of an object or array: a comma
// (more to come), or closer (the end, reported as end).
func (p *jsonParser) separator(closer byte) (end bool, err error) {
	p.skipSpace()
	if p.i >= len(p.data) {
		return false, p.unexpected()
	}
	switch p.data[p.i] {
	case ',':
		p.i++
		p.skipSpace()
		return false, nil
	case closer:
		p.i++
		return true, nil
	}
	return false, p.unexpected()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (p *jsonParser) number() (string, error) {
	start := p.i
	d := p.data
	if d[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(d) && d[p.i] == '0':
		p.i++
	case p.i < len(d) && d[p.i] >= '1' && d[p.i] <= '9':
		for p.i < len(d) && isDigit(d[p.i]) {
			p.i++
		}
	default:
		return "", p.unexpected()
	}
	if p.i < len(d) && d[p.i] == '.' {
		p.i++
		if p.i >= len(d) || !isDigit(d[p.i]) {
			return "", p.unexpected()
		}
		for p.i < len(d) && isDigit(d[p.i]) {
			p.i++
		}
	}
	if p.i < len(d) && (d[p.i] == 'e' || d[p.i] == 'E') {
		p.i++
		if p.i < len(d) && (d[p.i] == '+' || d[p.i] == '-') {
			p.i++
		}
		if p.i >= len(d) || !isDigit(d[p.i]) {
			return "", p.unexpected()
		}
		for p.i < len(d) && isDigit(d[p.i]) {
			p.i++
		}
	}
	return p.text[start:p.i], nil
}

// str reads a string at p.i (which is '"').
func (p *jsonParser) str() (string, error) {
	p.i++ // "
	d := p.data
	start := p.i
	// Fast path: plain ASCII without escapes, eight bytes at a time first.
	for p.i+8 <= len(d) && plain8(d[p.i:p.i+8]) {
		p.i += 8
	}
	for p.i < len(d) {
		c := d[p.i]
		if c == '"' {
			s := p.text[start:p.i]
			p.i++
			return s, nil
		}
		if c == '\\' || c < ' ' || c >= utf8.RuneSelf {
			break
		}
		p.i++
	}
	buf := make([]byte, p.i-start, p.i-start+16)
	copy(buf, d[start:p.i])
	for p.i < len(d) {
		c := d[p.i]
		switch {
		case c == '"':
			p.i++
			return string(buf), nil
		case c < ' ':
			return "", p.errorf("invalid character %s in string literal", quoteChar(c))
		case c == '\\':
			p.i++
			if p.i >= len(d) {
				return "", p.unexpected()
			}
			switch e := d[p.i]; e {
			case '"', '\\', '/':
				buf = append(buf, e)
				p.i++
			case 'b':
				buf = append(buf, '\b')
				p.i++
			case 'f':
				buf = append(buf, '\f')
				p.i++
			case 'n':
				buf = append(buf, '\n')
				p.i++
			case 'r':
				buf = append(buf, '\r')
				p.i++
			case 't':
				buf = append(buf, '\t')
				p.i++
			case 'u':
				p.i++
				r, ok := p.hex4()
				if !ok {
					return "", p.unexpected()
				}
				if utf16.IsSurrogate(r) {
					// A valid pair is one rune; anything else is U+FFFD
					// and what follows is read on its own.
					r2 := rune(-1)
					if p.i+1 < len(d) && d[p.i] == '\\' && d[p.i+1] == 'u' {
						save := p.i
						p.i += 2
						var ok2 bool
						if r2, ok2 = p.hex4(); !ok2 {
							return "", p.unexpected()
						}
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							buf = utf8.AppendRune(buf, dec)
							continue
						}
						p.i = save
					}
					r = utf8.RuneError
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return "", p.errorf("invalid character %s in string escape code", quoteChar(e))
			}
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			p.i++
		default:
			r, size := utf8.DecodeRune(d[p.i:])
			if r == utf8.RuneError && size == 1 {
				buf = utf8.AppendRune(buf, utf8.RuneError)
			} else {
				buf = append(buf, d[p.i:p.i+size]...)
			}
			p.i += size
		}
	}
	return "", p.unexpected()
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain8 reports whether the eight bytes of b are all ASCII from ' ' up,
// other than '"' and '\\': bytes a string copies as they are. All eight are
// tested at once. With no high bit set in x, subtracting n from every byte
// sets a byte's high bit only where some byte is below n (a borrow starts
// at such a byte), so the test is exact: below ' ', or equal to '"' or
// '\\' (zero after the XOR, so below 1), or high bit set.
func plain8(b []byte) bool {
	x := binary.LittleEndian.Uint64(b)
	q := x ^ ('"' * ones)
	e := x ^ ('\\' * ones)
	return (x|(x-' '*ones)|(q-ones)|(e-ones))&highs == 0
}

// hex4 reads four hex digits.
func (p *jsonParser) hex4() (rune, bool) {
	if p.i+4 > len(p.data) {
		p.i = len(p.data)
		return 0, false
	}
	var r rune
	for j := 0; j < 4; j++ {
		c := p.data[p.i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
		p.i++
	}
	return r, true
}

// skipValue moves past one JSON value at p.i without decoding it. It finds
// where the value ends; it does not check it (the caller parses what it
// has not seen before).
func (p *jsonParser) skipValue() error {
	d := p.data
	if p.i >= len(d) {
		return p.unexpected()
	}
	switch d[p.i] {
	case '"':
		return p.skipString()
	case '{', '[':
		depth := 0
		for p.i < len(d) {
			switch d[p.i] {
			case '"':
				if err := p.skipString(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					p.i++
					return nil
				}
			}
			p.i++
		}
		return p.unexpected()
	}
	start := p.i
	for p.i < len(d) {
		switch d[p.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			if p.i == start {
				return p.unexpected()
			}
			return nil
		}
		p.i++
	}
	return nil
}

// skipString moves past the string at p.i (which is '"').
func (p *jsonParser) skipString() error {
	d := p.data
	for p.i++; p.i < len(d); p.i++ {
		switch d[p.i] {
		case '\\':
			p.i++
		case '"':
			p.i++
			return nil
		}
	}
	return p.unexpected()
}
