package devstack

import (
	"fmt"
	"net"
	"os"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
)

// kafkaBroker is an in-process single-broker kfake cluster that persists
// its topics, records and group offsets under its data directory.
type kafkaBroker struct {
	cluster *kfake.Cluster
	addr    string
}

func startKafka(cfg KafkaConfig, dataDir string, log zerolog.Logger) (*kafkaBroker, error) {
	// Listen ourselves so a taken address is a clear error and the
	// configured host (not only 127.0.0.1) is honoured; kfake takes the
	// listener through ListenFn and advertises its address.
	ln, err := listen("kafka", FlagKafkaListen, FlagKafka, cfg.Addr)
	if err != nil {
		return nil, err
	}
	handed := false
	listenFn := func(string, string) (net.Listener, error) {
		if handed {
			return nil, fmt.Errorf("embedded kafka: only one broker is configured")
		}
		handed = true
		return ln, nil
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded kafka: create data dir: %w", err)
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.ListenFn(listenFn),
		kfake.ClusterID("ferry-dev"),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.DataDir(dataDir),
		kfake.WithLogger(kfakeLogger{log.With().Str("server", "kafka").Logger()}),
	)
	if err != nil {
		ln.Close() // kfake closes listeners it started; be sure for ours
		return nil, fmt.Errorf("embedded kafka (data dir %s): %w", dataDir, err)
	}
	return &kafkaBroker{cluster: c, addr: ln.Addr().String()}, nil
}

// close stops the broker; kfake writes its state to the data dir first.
func (k *kafkaBroker) close() { k.cluster.Close() }

// kfakeLogger bridges kfake's logger to zerolog; kfake's info level logs
// every request, so it maps to trace.
type kfakeLogger struct{ log zerolog.Logger }

var _ kfake.Logger = kfakeLogger{}

func (l kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.log.Error().Msgf(format, args...)
	case kfake.LogLevelWarn:
		l.log.Warn().Msgf(format, args...)
	default:
		l.log.Trace().Msgf(format, args...)
	}
}
