package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/store"
)

// MSK Connect's rules for worker configuration properties ("Supported
// worker configuration properties" in the MSK developer guide): key.converter
// and value.converter are required; of the producer. and consumer. client
// settings only those listed are allowed; every other property is allowed
// except the prefixes and names below, which the service itself owns
// (cluster connection, security, internal topics other than
// offset.storage.topic, REST listeners, plugin path, metrics).
var (
	workerRequired = []string{"key.converter", "value.converter"}

	workerProducerAllowed = setOf("acks", "batch.size", "buffer.memory", "compression.type",
		"enable.idempotence", "key.serializer", "linger.ms", "max.request.size", "metadata.max.age.ms",
		"metadata.max.idle.ms", "partitioner.class", "reconnect.backoff.max.ms", "reconnect.backoff.ms",
		"request.timeout.ms", "retry.backoff.ms", "value.serializer")

	workerConsumerAllowed = setOf("allow.auto.create.topics", "auto.offset.reset", "check.crcs",
		"fetch.max.bytes", "fetch.max.wait.ms", "fetch.min.bytes", "heartbeat.interval.ms",
		"key.deserializer", "max.partition.fetch.bytes", "max.poll.interval.ms", "max.poll.records",
		"metadata.max.age.ms", "partition.assignment.strategy", "reconnect.backoff.max.ms",
		"reconnect.backoff.ms", "request.timeout.ms", "retry.backoff.ms", "session.timeout.ms",
		"value.deserializer")

	workerDeniedPrefixes = []string{"access.control.", "admin.", "admin.listeners.https.", "client.",
		"connect.", "inter.worker.", "internal.", "listeners.https.", "metrics.", "metrics.context.",
		"rest.", "sasl.", "security.", "socket.", "ssl.", "topic.tracking.", "worker."}

	workerDenied = setOf("bootstrap.servers", "config.storage.topic", "connections.max.idle.ms",
		"connector.client.config.override.policy", "group.id", "listeners", "metric.reporters",
		"plugin.path", "receive.buffer.bytes", "response.http.headers.config",
		"scheduled.rebalance.max.delay.ms", "send.buffer.bytes", "status.storage.topic")
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// workerPropertyRule returns why MSK Connect does not allow key in a worker
// configuration, or "" if it does.
func workerPropertyRule(key string) string {
	if rest, ok := strings.CutPrefix(key, "producer."); ok {
		if !workerProducerAllowed[rest] {
			return "is not a producer setting a worker configuration may set"
		}
		return ""
	}
	if rest, ok := strings.CutPrefix(key, "consumer."); ok {
		if !workerConsumerAllowed[rest] {
			return "is not a consumer setting a worker configuration may set"
		}
		return ""
	}
	if workerDenied[key] {
		return "is set by the service and not allowed in a worker configuration"
	}
	for _, pre := range workerDeniedPrefixes {
		if strings.HasPrefix(key, pre) {
			return fmt.Sprintf("is not allowed in a worker configuration (%s* is set by the service)", pre)
		}
	}
	return ""
}

// checkWorkerProperties decodes propertiesFileContent (base64 of a Java
// properties file) and checks every key.
func checkWorkerProperties(p *jobs.Problems, content string) {
	const f = "propertiesFileContent"
	if content == "" {
		p.Add(f, "is required: base64 of a worker properties file")
		return
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(content))
	if err != nil {
		p.Add(f, "is not valid base64: %v", err)
		return
	}
	props, err := jobs.ParseProperties(string(raw))
	if err != nil {
		p.Add(f, "is not a valid properties file: %v", err)
		return
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if rule := workerPropertyRule(k); rule != "" {
			p.Add(f+"."+k, "%s", rule)
		}
	}
	for _, k := range workerRequired {
		if strings.TrimSpace(props[k]) == "" {
			p.Add(f+"."+k, "is required")
		}
	}
}

type createWorkerConfigRequest struct {
	Description           string            `json:"description"`
	Name                  string            `json:"name"`
	PropertiesFileContent string            `json:"propertiesFileContent"`
	Tags                  map[string]string `json:"tags"`
}

// createWorkerConfiguration stores a worker configuration at revision 1.
// MSK Connect has no call that adds a revision, so a second create with
// the same name is a 409; the record keeps a list of revisions regardless.
func (s *Server) createWorkerConfiguration(w http.ResponseWriter, r *http.Request, _ string) error {
	var req createWorkerConfigRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	var p jobs.Problems
	checkName(&p, "name", req.Name)
	if len(req.Description) > 1024 {
		p.Add("description", "must be at most 1024 characters")
	}
	checkWorkerProperties(&p, req.PropertiesFileContent)
	p = append(p, jobs.ValidateTags("tags", req.Tags)...)
	if len(p) > 0 {
		return invalid("CreateWorkerConfiguration request", p)
	}
	id := s.cfg.NewID()
	now := s.cfg.Now().UTC()
	wc := store.WorkerConfiguration{
		Name: req.Name, Arn: s.arn(jobs.KindWorkerConfiguration, req.Name, id), Description: req.Description,
		State: pluginActive, CreationTime: now,
		Revisions: []store.WorkerConfigurationRevision{{
			Revision: 1, Description: req.Description, CreationTime: now,
			PropertiesFileContent: strings.TrimSpace(req.PropertiesFileContent),
		}},
	}
	ctx := r.Context()
	if _, err := s.st.WorkerConfigs.Create(ctx, req.Name, wc); err != nil {
		if errors.Is(err, store.ErrExists) {
			return conflict("a worker configuration named %q already exists", req.Name)
		}
		return fmt.Errorf("create worker configuration %q: %w", req.Name, err)
	}
	if len(req.Tags) > 0 {
		if _, err := s.st.Tags.Put(ctx, id, req.Tags); err != nil {
			return fmt.Errorf("store tags of worker configuration %q: %w", req.Name, err)
		}
	}
	v := workerConfigView(wc, false)
	return writeJSON(w, map[string]any{
		"creationTime": v.CreationTime, "latestRevision": v.LatestRevision, "name": v.Name,
		"workerConfigurationArn": v.WorkerConfigurationArn, "workerConfigurationState": v.WorkerConfigurationState,
	})
}

func workerConfigView(wc store.WorkerConfiguration, content bool) workerConfigSummary {
	l := wc.Latest()
	v := workerConfigSummary{
		CreationTime: timestamp(wc.CreationTime), Description: wc.Description, Name: wc.Name,
		WorkerConfigurationArn: wc.Arn, WorkerConfigurationState: wc.State,
		LatestRevision: workerConfigRevision{CreationTime: timestamp(l.CreationTime), Description: l.Description, Revision: l.Revision},
	}
	if content {
		v.LatestRevision.PropertiesFileContent = l.PropertiesFileContent
	}
	return v
}

func (s *Server) describeWorkerConfiguration(w http.ResponseWriter, r *http.Request, arn string) error {
	e, err := s.getWorkerConfig(r.Context(), arn, "workerConfigurationArn")
	if err != nil {
		return err
	}
	return writeJSON(w, workerConfigView(e.Value, true))
}

func (s *Server) listWorkerConfigurations(w http.ResponseWriter, r *http.Request, _ string) error {
	q := r.URL.Query()
	max, err := maxResults(r)
	if err != nil {
		return err
	}
	entries, err := s.st.WorkerConfigs.List(r.Context(), q.Get("namePrefix"))
	if err != nil {
		return err
	}
	page, next, err := paginate(entries, func(e store.Entry[store.WorkerConfiguration]) string { return e.Key }, false, q.Get("nextToken"), max)
	if err != nil {
		return err
	}
	out := make([]workerConfigSummary, 0, len(page))
	for _, e := range page {
		out = append(out, workerConfigView(e.Value, false))
	}
	resp := map[string]any{"workerConfigurations": out}
	if next != "" {
		resp["nextToken"] = next
	}
	return writeJSON(w, resp)
}

func (s *Server) deleteWorkerConfiguration(w http.ResponseWriter, r *http.Request, arn string) error {
	ctx := r.Context()
	e, err := s.getWorkerConfig(ctx, arn, "workerConfigurationArn")
	if err != nil {
		return err
	}
	id := arnID(e.Value.Arn)
	users, err := s.usersOf(r, func(c jobs.ConnectorSpec) bool {
		return c.WorkerConfiguration != nil && arnID(c.WorkerConfiguration.WorkerConfigurationArn) == id
	})
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return conflict("worker configuration %s is in use by connector%s %s", e.Value.Name, plural(len(users)), strings.Join(users, ", "))
	}
	if err := s.st.WorkerConfigs.Delete(ctx, e.Key, e.Revision); err != nil {
		return fmt.Errorf("delete worker configuration %q: %w", e.Value.Name, err)
	}
	if err := s.st.Tags.Delete(ctx, id, 0); err != nil {
		return fmt.Errorf("delete tags of worker configuration %q: %w", e.Value.Name, err)
	}
	return writeJSON(w, map[string]string{"workerConfigurationArn": e.Value.Arn, "workerConfigurationState": "DELETING"})
}
