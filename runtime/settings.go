package runtime

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/configprovider"
	"github.com/ferryhq/ferry/runtime/connect"
)

// Defaults, as Kafka Connect's.
const (
	defaultFlushInterval   = 60 * time.Second
	defaultMetricsInterval = 5 * time.Second
	defaultMaxPollRecords  = 500
	opTimeout              = 60 * time.Second // bound on one task call made outside the poll loop
	maxPollWait            = time.Second      // longest a poll waits before Put is called with no records
)

// sinkSettings is what the engine reads from the connector configuration and
// the worker properties, parsed once.
type sinkSettings struct {
	group  string
	seeds  []string
	topics []string
	regex  string
	flush  time.Duration
	errorSettings

	dlqTopic   string
	dlqRF      int
	dlqHeaders bool

	maxPollRecords int
	resetLatest    bool           // auto.offset.reset=latest
	fetch          fetchOverrides // the user's fetch sizes, clamped to the memory plan (memory.go)
	kafkaOpts      []kgo.Opt      // group tuning and security
}

// lookup reads a key from the connector configuration, else the worker
// properties.
func lookup(spec *jobs.WorkerSpec, key string) (string, bool) {
	if v, ok := spec.Config[key]; ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v), true
	}
	if v, ok := spec.WorkerProperties[key]; ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v), true
	}
	return "", false
}

// consumerProp reads a consumer property: the connector's
// consumer.override.<name> wins over the worker's consumer.<name>.
func consumerProp(spec *jobs.WorkerSpec, name string) (string, bool) {
	if v, ok := spec.Config["consumer.override."+name]; ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v), true
	}
	if v, ok := spec.WorkerProperties["consumer."+name]; ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v), true
	}
	return "", false
}

// positiveMs parses a positive number of milliseconds.
func positiveMs(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("must be a positive number of milliseconds, got %q", v)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// errorSettings are the errors.* keys sink and source tasks share.
type errorSettings struct {
	errsAll     bool // errors.tolerance=all
	errorsLog   bool // errors.log.enable
	logMessages bool // errors.log.include.messages
}

// failureEvent starts the log line of a failed record: an error under
// errors.tolerance=none (it fails the task), a warning under all.
func (es errorSettings) failureEvent(log *zerolog.Logger) *zerolog.Event {
	if es.errsAll {
		return log.Warn()
	}
	return log.Error()
}

// tolerance names errors.tolerance's value.
func (es errorSettings) tolerance() string {
	if es.errsAll {
		return "all"
	}
	return "none"
}

// parseCommon reads what sink and source tasks share:
// offset.flush.interval.ms, errors.tolerance, errors.log.enable and
// errors.log.include.messages; bad notes a problem with a key.
func parseCommon(spec *jobs.WorkerSpec, bad func(key, format string, args ...any)) (flush time.Duration, es errorSettings) {
	flush = defaultFlushInterval
	if v, ok := lookup(spec, connect.KeyOffsetFlushMs); ok {
		if d, err := positiveMs(v); err != nil {
			bad(connect.KeyOffsetFlushMs, "%v", err)
		} else {
			flush = d
		}
	}
	if v, ok := lookup(spec, connect.KeyErrorsTolerance); ok {
		switch v {
		case "none":
		case "all":
			es.errsAll = true
		default:
			bad(connect.KeyErrorsTolerance, "must be none or all, got %q", v)
		}
	}
	// As Kafka Connect, the connector's own configuration only.
	es.errorsLog = strings.EqualFold(strings.TrimSpace(spec.Config[connect.KeyErrorsLog]), "true")
	es.logMessages = strings.EqualFold(strings.TrimSpace(spec.Config[connect.KeyErrorsLogMessages]), "true")
	return flush, es
}

func parseSinkSettings(spec *jobs.WorkerSpec) (*sinkSettings, error) {
	s := &sinkSettings{
		group:          jobs.ConsumerGroup(spec.Connector),
		seeds:          connect.SplitList(spec.BootstrapServers),
		maxPollRecords: defaultMaxPollRecords,
		dlqRF:          -1,
	}
	var problems []string
	bad := func(key, format string, args ...any) {
		problems = append(problems, key+": "+fmt.Sprintf(format, args...))
	}
	if len(s.seeds) == 0 {
		bad("bootstrapServers", "is required")
	}
	s.topics = connect.SplitList(spec.Config[connect.KeyTopics])
	s.regex = strings.TrimSpace(spec.Config[connect.KeyTopicsRegex])
	if len(s.topics) == 0 && s.regex == "" {
		bad(connect.KeyTopics, "one of topics or topics.regex is required")
	}
	s.flush, s.errorSettings = parseCommon(spec, bad)
	s.dlqTopic = strings.TrimSpace(spec.Config[connect.KeyDLQTopic])
	if v, ok := lookup(spec, connect.KeyDLQReplication); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < -1 || n == 0 {
			bad(connect.KeyDLQReplication, "must be a positive integer or -1, got %q", v)
		}
		s.dlqRF = n
	}
	s.dlqHeaders = strings.EqualFold(spec.Config[connect.KeyDLQHeaders], "true")

	s.fetch = parseFetchOverrides(spec, bad)
	if v, ok := consumerProp(spec, "max.poll.records"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad("consumer.max.poll.records", "must be a positive integer, got %q", v)
		}
		s.maxPollRecords = n
	}
	// Kafka Connect's sink consumers start at the earliest offset.
	reset := kgo.NewOffset().AtStart()
	if v, ok := consumerProp(spec, "auto.offset.reset"); ok {
		switch v {
		case "earliest":
		case "latest":
			reset = kgo.NewOffset().AtEnd()
			s.resetLatest = true
		default:
			bad("consumer.auto.offset.reset", "must be earliest or latest, got %q", v)
		}
	}
	s.kafkaOpts = append(s.kafkaOpts, kgo.ConsumeResetOffset(reset))
	for _, d := range []struct {
		name string
		opt  func(time.Duration) kgo.GroupOpt
	}{
		{"session.timeout.ms", kgo.SessionTimeout},
		{"heartbeat.interval.ms", kgo.HeartbeatInterval},
		{"max.poll.interval.ms", kgo.RebalanceTimeout},
	} {
		if v, ok := consumerProp(spec, d.name); ok {
			dur, err := positiveMs(v)
			if err != nil {
				bad("consumer."+d.name, "%v", err)
				continue
			}
			s.kafkaOpts = append(s.kafkaOpts, d.opt(dur))
		}
	}
	if v, ok := consumerProp(spec, "fetch.max.wait.ms"); ok {
		dur, err := positiveMs(v)
		if err != nil {
			bad("consumer.fetch.max.wait.ms", "%v", err)
		} else {
			s.kafkaOpts = append(s.kafkaOpts, kgo.FetchMaxWait(dur))
		}
	}
	// Like Kafka's Java consumer (allow.auto.create.topics=true), ask the
	// broker to create subscribed topics that do not exist yet; the broker's
	// own auto.create.topics.enable decides. Without it a sink subscribed to
	// a topic nobody has produced to yet never joins its group.
	autoCreate := true
	if v, ok := consumerProp(spec, "allow.auto.create.topics"); ok {
		switch strings.ToLower(v) {
		case "true":
		case "false":
			autoCreate = false
		default:
			bad("consumer.allow.auto.create.topics", "must be true or false, got %q", v)
		}
	}
	if autoCreate {
		s.kafkaOpts = append(s.kafkaOpts, kgo.AllowAutoTopicCreation())
	}
	sec, err := securityOpts(spec)
	if err != nil {
		bad("security", "%v", err)
	}
	s.kafkaOpts = append(s.kafkaOpts, sec...)
	if len(problems) > 0 {
		return nil, fmt.Errorf("connector %q: %s", spec.Connector, strings.Join(problems, "; "))
	}
	return s, nil
}

// resolveConfig returns a copy of spec whose connector configuration and
// worker properties (but for the config.providers.* keys themselves) have
// their config provider references resolved with the providers the worker
// properties declare, and the redactor of the resolved values.
func resolveConfig(spec *jobs.WorkerSpec) (*jobs.WorkerSpec, *configprovider.Redactor, error) {
	res, err := configprovider.New(spec.WorkerProperties)
	if err != nil {
		return spec, nil, err
	}
	cfg, redact, err := res.Resolve(spec.Config)
	if err != nil {
		return spec, nil, err
	}
	wp := map[string]string{}
	for k, v := range spec.WorkerProperties {
		if !strings.HasPrefix(k, configprovider.KeyProviders) {
			wp[k] = v
		}
	}
	wp, wredact, err := res.Resolve(wp)
	if err != nil {
		return spec, nil, fmt.Errorf("worker properties: %w", err)
	}
	redact.Merge(wredact)
	for k, v := range spec.WorkerProperties {
		if strings.HasPrefix(k, configprovider.KeyProviders) {
			wp[k] = v
		}
	}
	out := *spec
	out.Config, out.WorkerProperties = cfg, wp
	return &out, redact, nil
}
