package runtime

import (
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoLogger bridges franz-go's logs into zerolog at info and above.
type kgoLogger struct{ log zerolog.Logger }

var _ kgo.Logger = kgoLogger{}

// Level makes franz-go build info and louder messages only.
func (kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelInfo }

// Log writes one franz-go message with its key/value pairs as fields.
func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var ev *zerolog.Event
	switch level {
	case kgo.LogLevelError:
		ev = l.log.Error()
	case kgo.LogLevelWarn:
		ev = l.log.Warn()
	case kgo.LogLevelInfo:
		ev = l.log.Debug() // franz-go's info is chatty (every join/assign); keep it at debug
	default:
		ev = l.log.Trace()
	}
	for i := 0; i+1 < len(keyvals); i += 2 {
		k, _ := keyvals[i].(string)
		ev = ev.Interface(k, keyvals[i+1])
	}
	ev.Msg("kafka: " + msg)
}
