package nomad

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/hashicorp/nomad/api"
)

// Names in the rendered job. The job ID is JobID(connector).
const (
	JobPrefix = "ferry-"  // job ID prefix
	GroupName = "workers" // the one task group
	TaskName  = "worker"  // the one task
)

// Job meta keys. ferry_connector makes the job ID reversible and marks the
// job as Ferry's; the others let Apply tell what the job runs.
const (
	MetaConnector = "ferry_connector"
	MetaArn       = "ferry_connector_arn"
	MetaRevision  = "ferry_revision"
	MetaRestarts  = "ferry_restarts"
	// MetaJobHash is a hash of the rendered job without its count: Apply
	// registers again only when it changes (or the job was stopped), so a
	// reconcile pass that changes nothing writes nothing.
	MetaJobHash = "ferry_job_hash"
)

// Drivers the rendering supports.
const (
	DriverRawExec = "raw_exec"
	DriverExec    = "exec"
	DriverDocker  = "docker"
)

// EnvPluginDir is set on workers of a connector with a PluginArtifact: the
// directory the plugin was unpacked into, for a plugin that ships files
// next to its binary. (The runtime does not read it.)
const EnvPluginDir = "FERRY_PLUGIN_DIR"

// pluginDir is where, relative to the task directory, a plugin's archive is
// unpacked; its binary runs from ${NOMAD_TASK_DIR}/plugins/<Binary>.
const pluginDir = "local/plugins/"

// MBPerMcu is the memory of one MCU (1 MCU = 1 vCPU + 4 GiB).
const MBPerMcu = 4096

// Defaults of RenderConfig.
const (
	DefaultMHzPerVCPU  = 2000
	DefaultKillTimeout = 30 * time.Second
)

// Item keys of the job's Nomad Variable that are not secrets: the two
// WorkerSpec fields that change with the worker count.
const (
	itemWorkers  = "workers"
	itemTasksMax = "tasks_max"
)

// Deployment is what one connector should run. It mirrors
// scheduler.Deployment field for field, plus what only Nomad needs.
type Deployment struct {
	Name     string // connector name ([a-zA-Z0-9-], see jobs.ValidName)
	Arn      string // connector ARN
	Revision int64  // spec revision; a change replaces the workers
	Restarts int64  // restart generation; a change replaces the workers
	Workers  int    // worker count
	Mcu      int    // MCUs per worker (1 MCU = 1 vCPU + 4 GiB)
	// Spec is what every worker is handed. It carries secrets: never log it.
	Spec jobs.WorkerSpec
	// Autoscaling, when set, puts a scaling block with its min and max
	// worker counts on the group, so Nomad refuses counts outside them.
	Autoscaling *jobs.AutoScaling
	// Plugin, when set, is fetched into the task before the worker starts,
	// and its binary runs instead of the ferry binary.
	Plugin *PluginArtifact
	// Reason, when set, is the message of a scale request (e.g. the
	// autoscaler's decision), so Nomad's scaling events say why.
	Reason string
}

// PluginArtifact is a custom plugin's archive that Nomad downloads with an
// artifact block into local/plugins/ before the worker starts.
type PluginArtifact struct {
	// Source is a go-getter URL, e.g. the Ferry API's
	// "http://ferry.service.consul:8083/ferry/plugin-files/acme/<id>/1.zip".
	// Archives (.zip) are unpacked.
	Source string
	// Checksum, optional, is "type:value" (e.g. "md5:…"); Nomad refuses a
	// download that does not match.
	Checksum string
	// Binary, when set, is the path inside the archive of the worker
	// executable: the task runs it, with the arguments and environment of
	// `ferry worker`, instead of the ferry binary.
	Binary string
}

// RenderConfig is how the server renders every connector's job: where the
// jobs go and how a worker is started.
type RenderConfig struct {
	Namespace   string   // Nomad namespace (empty: the client's default)
	Region      string   // Nomad region (empty: the client's default)
	Datacenters []string // empty: every datacenter ("*")
	NodePool    string   // empty: Nomad's default pool
	// Driver is raw_exec (default), exec or docker.
	Driver string
	// WorkerCommand is the ferry binary on the client nodes (raw_exec, exec);
	// the task runs "WorkerCommand worker".
	WorkerCommand string
	// Image is the ferry image (docker); the task runs its entrypoint with
	// the argument "worker".
	Image string
	// MHzPerVCPU is the CPU one MCU reserves (default 2000).
	MHzPerVCPU int
	// ReserveCores reserves MCU whole cores instead of MHz.
	ReserveCores bool
	// KillTimeout is how long a worker has after SIGTERM to flush and
	// commit before it is killed (default 30 s).
	KillTimeout time.Duration
}

// Validate reports every problem with the configuration.
func (c RenderConfig) Validate() error {
	var errs []error
	switch c.Driver {
	case "", DriverRawExec, DriverExec:
		if c.WorkerCommand == "" {
			errs = append(errs, fmt.Errorf("driver %s needs a worker command", c.driver()))
		}
	case DriverDocker:
		if c.Image == "" {
			errs = append(errs, errors.New("driver docker needs an image"))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown driver %q (want raw_exec, exec or docker)", c.Driver))
	}
	if c.MHzPerVCPU < 0 {
		errs = append(errs, errors.New("MHz per vCPU must not be negative"))
	}
	if c.KillTimeout < 0 {
		errs = append(errs, errors.New("kill timeout must not be negative"))
	}
	for _, dc := range c.Datacenters {
		if dc == "" {
			errs = append(errs, errors.New("datacenter names must not be empty"))
			break
		}
	}
	return errors.Join(errs...)
}

func (c RenderConfig) driver() string {
	if c.Driver == "" {
		return DriverRawExec
	}
	return c.Driver
}

func (c RenderConfig) mhzPerVCPU() int {
	if c.MHzPerVCPU == 0 {
		return DefaultMHzPerVCPU
	}
	return c.MHzPerVCPU
}

func (c RenderConfig) killTimeout() time.Duration {
	if c.KillTimeout == 0 {
		return DefaultKillTimeout
	}
	return c.KillTimeout
}

// maxVariablePath is the longest path Nomad accepts for a variable (bytes).
const maxVariablePath = 128

// JobID is the Nomad job ID of a connector.
func JobID(connector string) string { return JobPrefix + connector }

// VariablePath is the path of the Nomad Variable holding a connector's
// secrets. Nomad lets a job's tasks read nomad/jobs/<job ID> without any
// ACL policy.
func VariablePath(connector string) string { return "nomad/jobs/" + JobID(connector) }

// validate reports every problem with a deployment that rendering cannot fix.
func (d Deployment) validate() error {
	var errs []error
	if !jobs.ValidName(d.Name) {
		errs = append(errs, fmt.Errorf("invalid connector name %q", d.Name))
	}
	if n := len(VariablePath(d.Name)); n > maxVariablePath {
		errs = append(errs, fmt.Errorf("connector name is %d characters too long for a Nomad variable path (at most %d)", n-maxVariablePath, maxVariablePath-len(VariablePath(""))))
	}
	if d.Workers < 0 {
		errs = append(errs, fmt.Errorf("negative worker count %d", d.Workers))
	}
	if d.Mcu < 1 {
		errs = append(errs, fmt.Errorf("mcu count %d must be at least 1", d.Mcu))
	}
	if a := d.Autoscaling; a != nil {
		if a.MinWorkerCount < 0 || a.MaxWorkerCount < a.MinWorkerCount {
			errs = append(errs, fmt.Errorf("autoscaling bounds %d..%d are invalid", a.MinWorkerCount, a.MaxWorkerCount))
		} else if d.Workers < a.MinWorkerCount || d.Workers > a.MaxWorkerCount {
			errs = append(errs, fmt.Errorf("worker count %d is outside autoscaling bounds %d..%d", d.Workers, a.MinWorkerCount, a.MaxWorkerCount))
		}
	}
	if p := d.Plugin; p != nil {
		if p.Source == "" {
			errs = append(errs, errors.New("plugin artifact has no source"))
		}
		if p.Binary != "" && !relativePath(p.Binary) {
			errs = append(errs, fmt.Errorf("plugin binary %q must be a relative path inside the archive, without '..'", p.Binary))
		}
	}
	return errors.Join(errs...)
}

// Render builds the Nomad job of a deployment. It is pure: the same inputs
// give the same job. The job carries no secret: they are in the Variable
// RenderVariable builds, which Apply writes first.
func Render(d Deployment, cfg RenderConfig) (*api.Job, error) {
	if err := errors.Join(d.validate(), cfg.Validate()); err != nil {
		return nil, fmt.Errorf("render job for %q: %w", d.Name, err)
	}
	tmpl, _, err := renderSpec(d)
	if err != nil {
		return nil, fmt.Errorf("render job for %q: %w", d.Name, err)
	}
	id := JobID(d.Name)
	job := &api.Job{
		ID:   new(id),
		Name: new(id),
		Type: new(api.JobTypeService),
		Meta: map[string]string{
			MetaConnector: d.Name,
			MetaArn:       d.Arn,
			MetaRevision:  strconv.FormatInt(d.Revision, 10),
			MetaRestarts:  strconv.FormatInt(d.Restarts, 10),
		},
		TaskGroups: []*api.TaskGroup{renderGroup(d, cfg, tmpl)},
	}
	if cfg.Namespace != "" {
		job.Namespace = new(cfg.Namespace)
	}
	if cfg.Region != "" {
		job.Region = new(cfg.Region)
	}
	if len(cfg.Datacenters) > 0 {
		job.Datacenters = append([]string(nil), cfg.Datacenters...)
	}
	if cfg.NodePool != "" {
		job.NodePool = new(cfg.NodePool)
	}
	h, err := jobHash(job)
	if err != nil {
		return nil, fmt.Errorf("render job for %q: %w", d.Name, err)
	}
	job.Meta[MetaJobHash] = h
	return job, nil
}

func renderGroup(d Deployment, cfg RenderConfig, tmpl string) *api.TaskGroup {
	g := &api.TaskGroup{
		Name:  new(GroupName),
		Count: new(d.Workers),
		// A worker that exits is restarted in place a few times quickly (a
		// Kafka or S3 hiccup), then with mode "delay" keeps being retried
		// once per interval instead of failing the allocation: a worker is
		// stateless, so a crash is almost always its configuration or a
		// dependency, which another node would not fix. The reconciler sees
		// the restarts and reports a crash loop.
		RestartPolicy: &api.RestartPolicy{
			Attempts: new(3),
			Interval: new(time.Minute),
			Delay:    new(5 * time.Second),
			Mode:     new(api.RestartPolicyModeDelay),
		},
		// When Nomad does fail an allocation (its node is drained or lost,
		// it fails its deployment), a stateless worker can run anywhere:
		// reschedule it without limit, backing off exponentially so a
		// cluster-wide problem does not churn placements.
		ReschedulePolicy: &api.ReschedulePolicy{
			Attempts:      new(0),
			Interval:      new(time.Duration(0)),
			Unlimited:     new(true),
			DelayFunction: new("exponential"),
			Delay:         new(30 * time.Second),
			MaxDelay:      new(5 * time.Minute),
		},
		// A new revision replaces one worker at a time: the consumer group
		// rebalances once per worker rather than losing every member at
		// once. Workers have no health endpoint, so a worker is healthy once
		// its task has run for 5 s; a bad revision is reported by the
		// reconciler (FAILED) rather than reverted behind the user's back.
		Update: &api.UpdateStrategy{
			MaxParallel:     new(1),
			HealthCheck:     new("task_states"),
			MinHealthyTime:  new(5 * time.Second),
			HealthyDeadline: new(3 * time.Minute),
			AutoRevert:      new(false),
		},
		Tasks: []*api.Task{renderTask(d, cfg, tmpl)},
	}
	if a := d.Autoscaling; a != nil {
		// Ferry's own autoscaler drives the count (Enabled false keeps the
		// Nomad Autoscaler away); the bounds make Nomad refuse a count
		// outside min..max whoever asks for it.
		g.Scaling = &api.ScalingPolicy{
			Min:     new(int64(a.MinWorkerCount)),
			Max:     new(int64(a.MaxWorkerCount)),
			Enabled: new(false),
		}
	}
	return g
}

func renderTask(d Deployment, cfg RenderConfig, tmpl string) *api.Task {
	specPath := "${NOMAD_SECRETS_DIR}/spec.json"
	t := &api.Task{
		Name:   TaskName,
		Driver: cfg.driver(),
		Env: map[string]string{
			jobs.EnvSpecFile:    specPath,
			jobs.EnvWorkerIndex: "${NOMAD_ALLOC_INDEX}",
			// Alloc IDs are UUIDs: usable as a NATS subject token.
			jobs.EnvWorkerID: "${NOMAD_ALLOC_ID}",
			jobs.EnvDataDir:  "${NOMAD_ALLOC_DIR}/data",
			// As the local executor does: a worker's Go scheduler uses as
			// many threads as it has vCPUs.
			"GOMAXPROCS": strconv.Itoa(d.Mcu),
		},
		Resources:   &api.Resources{MemoryMB: new(d.Mcu * MBPerMcu)},
		KillTimeout: new(cfg.killTimeout()),
		KillSignal:  "SIGTERM",
		Templates: []*api.Template{{
			// Relative to the task directory: the same file the task sees
			// at ${NOMAD_SECRETS_DIR}/spec.json, whatever the driver maps
			// that directory to (docker mounts it at /secrets).
			DestPath:     new("secrets/spec.json"),
			EmbeddedTmpl: new(tmpl),
			// The variable changes on every scale decision (workers,
			// tasks_max); running workers keep going, new ones read the new
			// file. A new revision is a new job version, which replaces
			// the workers anyway.
			ChangeMode: new("noop"),
			Perms:      new("0600"),
		}},
	}
	if cfg.ReserveCores {
		t.Resources.Cores = new(d.Mcu)
	} else {
		t.Resources.CPU = new(d.Mcu * cfg.mhzPerVCPU())
	}
	switch t.Driver {
	case DriverDocker:
		t.Config = map[string]any{"image": cfg.Image, "args": []string{"worker"}}
	default:
		t.Config = map[string]any{"command": cfg.WorkerCommand, "args": []string{"worker"}}
	}
	if p := d.Plugin; p != nil && p.Binary != "" {
		// The plugin's binary is a Ferry worker with more connectors: the
		// same arguments and environment, another executable. Docker maps
		// the task directory into the container, where NOMAD_TASK_DIR
		// names it too.
		bin := "${NOMAD_TASK_DIR}/plugins/" + p.Binary
		if t.Driver == DriverDocker {
			t.Config["entrypoint"] = []string{bin}
		} else {
			t.Config["command"] = bin
		}
	}
	if p := d.Plugin; p != nil {
		a := &api.TaskArtifact{
			GetterSource: new(p.Source),
			RelativeDest: new(pluginDir),
		}
		if p.Checksum != "" {
			a.GetterOptions = map[string]string{"checksum": p.Checksum}
		}
		t.Artifacts = []*api.TaskArtifact{a}
		t.Env[EnvPluginDir] = "${NOMAD_TASK_DIR}/plugins"
	}
	return t
}

// RenderVariable builds the Nomad Variable a deployment's template reads:
// its secret configuration values and its worker and task counts. It carries
// secrets: never log its items.
func RenderVariable(d Deployment, cfg RenderConfig) (*api.Variable, error) {
	if err := d.validate(); err != nil {
		return nil, fmt.Errorf("render variable for %q: %w", d.Name, err)
	}
	_, items, err := renderSpec(d)
	if err != nil {
		return nil, fmt.Errorf("render variable for %q: %w", d.Name, err)
	}
	return &api.Variable{Namespace: cfg.Namespace, Path: VariablePath(d.Name), Items: items}, nil
}

// placeholder marks, in the spec JSON before it becomes a template, a value
// that the template reads from the variable. NUL bytes cannot come from a
// connector configuration in practice, and renderSpec refuses one that has
// them anyway.
const placeholderMark = "\x00ferry-var:"

// renderSpec builds the template that renders the worker spec, and the
// variable items it reads.
//
// The spec is marshalled as JSON with each secret value, and the workers and
// tasksMax numbers, replaced by a placeholder string; then every placeholder
// (quotes included) becomes a template action that prints the variable item
// as a JSON value: a string through toJSON, a number as is. The whole
// document sits inside {{ with nomadVar "<path>" }}…{{ end }}, so the file
// is only written once the variable can be read. Literal "{{" in values
// would start an action: in compact JSON it can only occur inside a string,
// so it is written "{\u007b", which JSON decodes to the same text.
func renderSpec(d Deployment) (string, map[string]string, error) {
	ws := d.Spec
	items := map[string]string{
		itemWorkers:  strconv.Itoa(ws.Workers),
		itemTasksMax: strconv.Itoa(ws.TasksMax),
	}
	var err error
	if ws.Config, err = extractSecrets(ws.Config, "config_", items); err != nil {
		return "", nil, err
	}
	if ws.WorkerProperties, err = extractSecrets(ws.WorkerProperties, "worker_", items); err != nil {
		return "", nil, err
	}
	raw, err := marshal(ws)
	if err != nil {
		return "", nil, fmt.Errorf("encode worker spec: %w", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &fields); err != nil {
		return "", nil, fmt.Errorf("decode worker spec: %w", err)
	}
	for field, item := range map[string]string{"workers": itemWorkers, "tasksMax": itemTasksMax} {
		if _, ok := fields[field]; !ok {
			return "", nil, fmt.Errorf("worker spec has no %q field", field)
		}
		fields[field], _ = json.Marshal(placeholderMark + item)
	}
	doc, err := marshal(fields)
	if err != nil {
		return "", nil, fmt.Errorf("encode worker spec: %w", err)
	}
	doc = strings.ReplaceAll(doc, "{{", `{\u007b`)

	quotedMark, _ := json.Marshal(placeholderMark)
	markText := strings.Trim(string(quotedMark), `"`)
	if n := strings.Count(doc, markText); n != len(items) {
		return "", nil, fmt.Errorf("worker spec holds %d variable placeholders, want %d (a value contains NUL bytes?)", n, len(items))
	}
	for item := range items {
		q, _ := json.Marshal(placeholderMark + item)
		action := fmt.Sprintf(`{{ (index . %q).Value | toJSON }}`, item)
		if item == itemWorkers || item == itemTasksMax {
			action = fmt.Sprintf(`{{ (index . %q).Value }}`, item)
		}
		doc = strings.Replace(doc, string(q), action, 1)
	}
	tmpl := fmt.Sprintf("{{ with nomadVar %q }}%s{{ end }}\n", VariablePath(d.Name), doc)
	return tmpl, items, nil
}

// extractSecrets returns a copy of m with every secret value (jobs.IsSecretKey)
// replaced by a placeholder, and adds the values to items under keys made of
// prefix and the configuration key with anything but letters, digits and '_'
// turned into '_' (unique, in sorted key order).
func extractSecrets(m map[string]string, prefix string, items map[string]string) (map[string]string, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]string, len(m))
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if strings.Contains(k, placeholderMark) || strings.Contains(v, placeholderMark) {
			return nil, fmt.Errorf("configuration key %q: NUL bytes are not allowed", k)
		}
		out[k] = v
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !jobs.IsSecretKey(k) {
			continue
		}
		item := prefix + itemName(k)
		for n := 2; ; n++ {
			if _, taken := items[item]; !taken {
				break
			}
			item = fmt.Sprintf("%s%s_%d", prefix, itemName(k), n)
		}
		items[item] = m[k]
		out[k] = placeholderMark + item
	}
	return out, nil
}

// marshal encodes v as compact JSON without HTML escaping, so the rendered
// spec shows values as the user wrote them.
func marshal(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

func itemName(k string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			return r
		}
		return '_'
	}, k)
}

// jobHash hashes a job as rendered, leaving out its count and its own hash.
func jobHash(job *api.Job) (string, error) {
	c := *job
	c.Meta = make(map[string]string, len(job.Meta))
	for k, v := range job.Meta {
		if k != MetaJobHash {
			c.Meta[k] = v
		}
	}
	c.TaskGroups = make([]*api.TaskGroup, len(job.TaskGroups))
	for i, g := range job.TaskGroups {
		gc := *g
		gc.Count = nil
		c.TaskGroups[i] = &gc
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("hash job: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// relativePath reports whether p is a clean relative slash-separated path
// that stays inside the directory it is relative to.
func relativePath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || path.Clean(p) != p {
		return false
	}
	return p != "." && p != ".." && !strings.HasPrefix(p, "../")
}
