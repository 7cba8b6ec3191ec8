package nomad

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
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
// WorkerSpec fields that change with the worker count, and the NATS URL,
// which may differ from one server replica to the next (and so must not be
// part of the job, or a leader failover would replace every worker).
const (
	itemWorkers  = "workers"
	itemTasksMax = "tasks_max"
	itemNatsURL  = "nats_url"
)

// Names of the worker's metrics endpoint in the rendered job: the dynamic
// port and the Nomad service Prometheus discovers workers by.
const (
	MetricsPort    = "metrics"
	MetricsService = "ferry-worker"
)

// workerArtifactDir is where, relative to the task directory, the ferry
// binary's archive (RenderConfig.WorkerArtifact) is unpacked.
const workerArtifactDir = "local/ferry/"

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

// WorkerArtifact is an archive holding the ferry binary that Nomad downloads
// into each worker's task directory (local/ferry/) before it starts, for the
// exec and raw_exec drivers on clients without ferry installed.
type WorkerArtifact struct {
	// Source is a go-getter URL of an archive (.tar.gz, .tgz, .zip, ...,
	// or any URL with ?archive=<type>): Nomad saves a plain file without
	// its execute bit, so the binary must come in an archive, which keeps it.
	Source string
	// Checksum, optional, is "type:value" (e.g. "sha256:…"); Nomad refuses
	// a download that does not match.
	Checksum string
	// Binary is the path of the ferry binary inside the archive (default
	// "ferry").
	Binary string
}

func (a *WorkerArtifact) binary() string {
	if a.Binary == "" {
		return "ferry"
	}
	return a.Binary
}

// archiveSuffixes are the file extensions go-getter unpacks.
var archiveSuffixes = []string{".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst", ".tzst"}

// isArchive reports whether go-getter unpacks what source names.
func isArchive(source string) bool {
	u, err := url.Parse(source)
	if err != nil {
		return false
	}
	if a := u.Query().Get("archive"); a != "" {
		return a != "false"
	}
	p := strings.ToLower(u.Path)
	for _, s := range archiveSuffixes {
		if strings.HasSuffix(p, s) {
			return true
		}
	}
	return false
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
	// WorkerArtifact, instead of WorkerCommand, has Nomad download the
	// ferry binary into every worker's task directory (raw_exec, exec).
	WorkerArtifact *WorkerArtifact
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
		if c.WorkerCommand == "" && c.WorkerArtifact == nil {
			errs = append(errs, fmt.Errorf("driver %s needs a worker command or a worker artifact", c.driver()))
		}
		if c.WorkerCommand != "" && c.WorkerArtifact != nil {
			errs = append(errs, errors.New("a worker command and a worker artifact exclude each other"))
		}
	case DriverDocker:
		if c.Image == "" {
			errs = append(errs, errors.New("driver docker needs an image"))
		}
		if c.WorkerArtifact != nil {
			errs = append(errs, errors.New("a worker artifact is for the exec and raw_exec drivers; docker runs the image's binary"))
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
	if a := c.WorkerArtifact; a != nil {
		switch {
		case a.Source == "":
			errs = append(errs, errors.New("worker artifact has no source"))
		case !isArchive(a.Source):
			errs = append(errs, fmt.Errorf("worker artifact %q must be an archive (%s, or ?archive=<type>): Nomad saves a plain file without its execute bit", a.Source, strings.Join(archiveSuffixes, ", ")))
		}
		if !relativePath(a.binary()) {
			errs = append(errs, fmt.Errorf("worker artifact binary %q must be a relative path inside the archive, without '..'", a.Binary))
		}
		if a.Checksum != "" && !strings.Contains(a.Checksum, ":") {
			errs = append(errs, fmt.Errorf("worker artifact checksum %q: want type:value, e.g. sha256:…", a.Checksum))
		}
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

// variablePrefix is where the variables a job's tasks may read live.
const variablePrefix = "nomad/jobs/"

// maxJobID is the longest job ID whose variable path Nomad accepts.
const maxJobID = maxVariablePath - len(variablePrefix)

// JobID is the Nomad job ID of a connector: "ferry-<name>". A name too long
// for the job's variable path (over 111 characters; connector names may
// have 128) is cut and ends in "_" and 16 hex digits of its SHA-256, which
// no name can produce ('_' is not allowed in names); the job's meta
// ferry_connector still names the connector in full.
func JobID(connector string) string {
	id := JobPrefix + connector
	if len(id) <= maxJobID {
		return id
	}
	sum := sha256.Sum256([]byte(connector))
	h := hex.EncodeToString(sum[:8])
	return id[:maxJobID-len(h)-1] + "_" + h
}

// VariablePath is the path of the Nomad Variable holding a connector's
// secrets. Nomad lets a job's tasks read nomad/jobs/<job ID> without any
// ACL policy.
func VariablePath(connector string) string { return variablePrefix + JobID(connector) }

// validate reports every problem with a deployment that rendering cannot fix.
func (d Deployment) validate() error {
	var errs []error
	if !jobs.ValidName(d.Name) {
		errs = append(errs, fmt.Errorf("invalid connector name %q", d.Name))
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
	job, _, err := render(d, cfg)
	return job, err
}

// render is Render that also returns the items of the job's variable (as
// RenderVariable does), so Apply builds the worker spec once per call.
func render(d Deployment, cfg RenderConfig) (*api.Job, map[string]string, error) {
	if err := errors.Join(d.validate(), cfg.Validate()); err != nil {
		return nil, nil, fmt.Errorf("render job for %q: %w", d.Name, err)
	}
	tmpl, items, err := renderSpec(d)
	if err != nil {
		return nil, nil, fmt.Errorf("render job for %q: %w", d.Name, err)
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
		return nil, nil, fmt.Errorf("render job for %q: %w", d.Name, err)
	}
	job.Meta[MetaJobHash] = h
	return job, items, nil
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
		// A node that loses the servers stops its workers after 30 s, and
		// Nomad places their replacements only once that time (and the
		// kill timeout) has passed since it lost the node: the same worker
		// index never runs twice at once, which a source task would turn
		// into duplicate records.
		Disconnect: &api.DisconnectStrategy{StopOnClientAfter: new(30 * time.Second)},
		// A dynamic port for the worker's Prometheus endpoint, announced as
		// a Nomad service Prometheus can discover (nomad_sd_configs).
		Networks: []*api.NetworkResource{{DynamicPorts: []api.Port{{Label: MetricsPort}}}},
		Services: []*api.Service{{
			Name:      MetricsService,
			Provider:  "nomad",
			PortLabel: MetricsPort,
			Tags:      []string{"connector=" + d.Name},
		}},
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
			// The worker serves /metrics on its dynamic port: on the
			// node's address (raw_exec, exec share the host's network).
			jobs.EnvMetricsAddr: "${NOMAD_ADDR_" + MetricsPort + "}",
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
			// Readable by the task whatever user it runs as: Nomad renders
			// the file as its own user (root), while an exec task runs as
			// nobody and a docker image as its own user, neither of which
			// Ferry can know the uid of. The secrets directory is the
			// task's own tmpfs (never on disk, invisible to other tasks'
			// chroots and containers), which is how Nomad itself hands a
			// task its workload identity and Vault tokens (world-readable
			// when the task names no user).
			Perms: new("0644"),
		}},
	}
	if cfg.ReserveCores {
		t.Resources.Cores = new(d.Mcu)
	} else {
		t.Resources.CPU = new(d.Mcu * cfg.mhzPerVCPU())
	}
	switch t.Driver {
	case DriverDocker:
		t.Config = map[string]any{"image": cfg.Image, "args": []string{"worker"}, "ports": []string{MetricsPort}}
		// In its own network namespace the worker listens on every
		// interface of the container, at the port Nomad maps to it.
		t.Env[jobs.EnvMetricsAddr] = ":${NOMAD_PORT_" + MetricsPort + "}"
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
	} else if a := cfg.WorkerArtifact; a != nil {
		// Nomad downloads the ferry binary (exec and raw_exec only, as
		// Validate checks); a plugin's own binary replaces it, so such a
		// task does without.
		t.Config["command"] = "${NOMAD_TASK_DIR}/ferry/" + a.binary()
		t.Artifacts = append(t.Artifacts, artifact(a.Source, a.Checksum, workerArtifactDir))
	}
	if p := d.Plugin; p != nil {
		t.Artifacts = append(t.Artifacts, artifact(p.Source, p.Checksum, pluginDir))
		t.Env[EnvPluginDir] = "${NOMAD_TASK_DIR}/plugins"
	}
	return t
}

func artifact(source, checksum, dest string) *api.TaskArtifact {
	a := &api.TaskArtifact{GetterSource: new(source), RelativeDest: new(dest)}
	if checksum != "" {
		a.GetterOptions = map[string]string{"checksum": checksum}
	}
	return a
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
// The spec is marshalled as JSON with each secret value, the workers and
// tasksMax numbers and the NATS URL replaced by a placeholder string; then every placeholder
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
	if ws.NatsURL != "" {
		if _, ok := fields["natsUrl"]; !ok {
			return "", nil, errors.New(`worker spec has no "natsUrl" field`)
		}
		items[itemNatsURL] = ws.NatsURL
		fields["natsUrl"], _ = json.Marshal(placeholderMark + itemNatsURL)
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
