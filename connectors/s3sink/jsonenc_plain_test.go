package s3sink

import (
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// plain8 is plainWord on the first eight bytes of s, the form the tests
// below check it in.
func plain8(s string) bool {
	return plainWord(binary.LittleEndian.Uint64([]byte(s[:8])))
}

// plain8 agrees with a byte-by-byte test on every single special byte at
// every position among plain ones, and on random words.
func TestPlain8(t *testing.T) {
	byByte := func(s string) bool {
		for i := 0; i < 8; i++ {
			if c := s[i]; c < ' ' || c == '"' || c == '\\' || c >= 0x80 {
				return false
			}
		}
		return true
	}
	check := func(s string) {
		if got, want := plain8(s), byByte(s); got != want {
			t.Fatalf("plain8(%q) = %v, want %v", s, got, want)
		}
	}
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			for _, fill := range []byte{' ', '!', '#', '[', ']', 'x', '~', 0x7f} {
				b := []byte(strings.Repeat(string(fill), 8))
				b[pos] = byte(c)
				check(string(b))
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		var b [8]byte
		for j := range b {
			b[j] = byte(r.IntN(256))
			if r.IntN(4) > 0 {
				b[j] = byte(0x20 + r.IntN(0x60)) // mostly printable ASCII
			}
		}
		check(string(b[:]))
	}
}

// appendJSONString writes what encoding/json writes (HTML escaping off)
// for strings long enough to take the eight-byte path, with a special
// byte at every position.
func TestAppendJSONStringLong(t *testing.T) {
	for _, special := range []string{`"`, `\`, "\n", "\x00", "\x1f", "é", "\u2028", "\xff", "<"} {
		for pos := 0; pos < 20; pos++ {
			s := strings.Repeat("a", pos) + special + strings.Repeat("b", 19-pos)
			got := string(appendJSONString(nil, s))
			want, err := appendJSONSlow(nil, s)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
			}
			var back string
			if err := json.Unmarshal([]byte(got), &back); err != nil {
				t.Errorf("%s: %v", got, err)
			}
		}
	}
}

// validNumber agrees with encoding/json on every string of up to five
// characters of a number's alphabet.
func TestValidNumber(t *testing.T) {
	const alphabet = "-+.eE0189"
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		if got, want := validNumber(prefix), prefix != "" && json.Valid([]byte(prefix)); got != want {
			t.Fatalf("validNumber(%q) = %v, want %v", prefix, got, want)
		}
		if n == 0 {
			return
		}
		for i := 0; i < len(alphabet); i++ {
			gen(prefix+alphabet[i:i+1], n-1)
		}
	}
	gen("", 5)
}
