package local

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/rs/zerolog"
)

// maxLine is the longest line kept whole; longer output is split.
const maxLine = 16 << 10

// lineLogger is the io.Writer a worker's stdout or stderr goes to: it logs
// every line with the connector and worker index and, for stderr, keeps the
// last lines in a tail. One exec goroutine writes to it.
type lineLogger struct {
	log  zerolog.Logger
	tail *tail // nil for stdout
	buf  []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.buf = append(l.buf, p...)
			if len(l.buf) >= maxLine {
				l.emit(l.buf)
				l.buf = l.buf[:0]
			}
			break
		}
		l.buf = append(l.buf, p[:i]...)
		l.emit(l.buf)
		l.buf = l.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

// flush emits a last line without its newline; call it after the process'
// output is closed.
func (l *lineLogger) flush() {
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = l.buf[:0]
	}
}

func (l *lineLogger) emit(b []byte) {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	line := string(b)
	if msg, lvl, fields, ok := parseJSONLine(b); ok {
		// A worker logs JSON (zerolog): re-log it at its own level with its
		// fields, so the console shows it readably and the log file keeps
		// it structured.
		l.log.WithLevel(lvl).Fields(fields).Msg(msg)
		line = msg
		if e, ok := fields["error"].(string); ok {
			line += ": " + e
		}
	} else {
		l.log.Info().Msg(line)
	}
	if l.tail != nil {
		l.tail.add(line)
	}
}

// parseJSONLine reads a zerolog JSON line: its message, level and the
// fields the executor's own logger does not already carry.
func parseJSONLine(b []byte) (string, zerolog.Level, map[string]any, bool) {
	if len(b) < 2 || b[0] != '{' {
		return "", 0, nil, false
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return "", 0, nil, false
	}
	msg, _ := m["message"].(string)
	lvl := zerolog.InfoLevel
	if s, ok := m["level"].(string); ok {
		if l, err := zerolog.ParseLevel(s); err == nil && l != zerolog.NoLevel {
			lvl = l
		}
	}
	for _, k := range []string{"message", "level", "time", "connector", "worker", "worker_id"} {
		delete(m, k)
	}
	return msg, lvl, m, true
}

// tail keeps the last n lines written to it.
type tail struct {
	n     int
	mu    sync.Mutex
	lines []string
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.n {
		t.lines = append(t.lines[:0], t.lines[len(t.lines)-t.n:]...)
	}
}

func (t *tail) snapshot() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}

// reset forgets the lines of an earlier incarnation.
func (t *tail) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = nil
}
