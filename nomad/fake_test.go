package nomad

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// fakeNomad speaks the part of Nomad's HTTP API the Deployer uses, as the
// real api.Client calls it: jobs (register with EnforceIndex and
// PreserveCounts, scale within the scaling bounds, deregister, list with
// meta), variables with check-and-set, and the allocations, evaluations and
// summaries a test sets. It keeps every register and scale request it got.
type fakeNomad struct {
	t  testing.TB
	mu sync.Mutex

	index     uint64
	jobs      map[string]*api.Job
	vars      map[string]*api.Variable
	allocs    map[string][]*api.AllocationListStub
	evals     map[string][]*api.Evaluation
	summaries map[string]*api.JobSummary
	// deploying marks jobs with an active deployment: Nomad refuses to
	// scale them.
	deploying map[string]bool
	latest    map[string]*api.Deployment
	// nodes and nodeAllocs are the cluster's nodes and what runs on them
	// (for the free capacity of a placement failure).
	nodes      []*api.NodeListStub
	nodeAllocs map[string][]*api.Allocation
	// fail, when set, answers every request matching "METHOD path" prefix
	// with a status and body (Nomad refusing or failing).
	fail map[string]failure
	// scaleNoIndex leaves JobModifyIndex out of scale answers.
	scaleNoIndex bool

	registers   []api.JobRegisterRequest
	rawRegister []map[string]any // register bodies as sent
	scales      []api.ScalingRequest
	deregisters []string // "<id> purge=<bool>"
	varWrites   int
	// blocking records "<path> index=<i> wait=<w>" of every list query
	// that asked to block.
	blocking []string
	// requests counts requests by "METHOD path".
	requests map[string]int
	// allocTaskStates records the task_states parameter of allocation lists.
	allocTaskStates []string
	// nonBlocking counts the requests without an index (not the watch's).
	nonBlocking int
	// filters records the filter expression of every list query by path.
	filters map[string][]string
}

func newFakeNomad(t testing.TB) *fakeNomad {
	return &fakeNomad{
		t: t, index: 100,
		jobs: map[string]*api.Job{}, vars: map[string]*api.Variable{},
		allocs: map[string][]*api.AllocationListStub{}, evals: map[string][]*api.Evaluation{},
		summaries: map[string]*api.JobSummary{}, deploying: map[string]bool{}, latest: map[string]*api.Deployment{},
		requests: map[string]int{}, filters: map[string][]string{},
		nodeAllocs: map[string][]*api.Allocation{}, fail: map[string]failure{},
	}
}

// failure is a canned error answer.
type failure struct {
	status int
	body   string
}

// failOn makes requests whose "METHOD path" starts with key fail.
func (f *fakeNomad) failOn(key string, status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[key] = failure{status, body}
}

// start serves the fake on a loopback port; the server is closed when the
// test ends.
func (f *fakeNomad) start(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakeNomad) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.block(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests[r.Method+" "+r.URL.Path]++
	if r.URL.Query().Get("index") == "" {
		f.nonBlocking++
	}
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(f.index, 10))
	path := r.URL.Path
	for key, fl := range f.fail {
		if strings.HasPrefix(r.Method+" "+r.URL.Path, key) {
			http.Error(w, fl.body, fl.status)
			return
		}
	}
	filter := r.URL.Query().Get("filter")
	if filter != "" {
		f.filters[path] = append(f.filters[path], filter)
	}
	// The only filter the Deployer sends: the job ID starts with ferry-.
	keep := func(jobID string) bool {
		return filter == "" || filter == `JobID matches "^ferry-"` && strings.HasPrefix(jobID, JobPrefix)
	}
	if filter != "" && filter != `JobID matches "^ferry-"` {
		http.Error(w, "fake nomad: unknown filter "+filter, http.StatusBadRequest)
		return
	}
	switch {
	case path == "/v1/allocations" && r.Method == http.MethodGet:
		var out []*api.AllocationListStub
		for _, as := range f.allocs {
			for _, a := range as {
				if keep(a.JobID) {
					out = append(out, a)
				}
			}
		}
		f.allocTaskStates = append(f.allocTaskStates, r.URL.Query().Get("task_states"))
		if r.URL.Query().Get("task_states") == "false" {
			for i, a := range out {
				c := *a
				c.TaskStates = nil
				out[i] = &c
			}
		}
		f.reply(w, nonNil(out))
	case path == "/v1/deployments" && r.Method == http.MethodGet:
		out := []*api.Deployment{}
		for _, dep := range f.latest {
			if dep != nil && keep(dep.JobID) {
				out = append(out, dep)
			}
		}
		f.reply(w, out)
	case path == "/v1/vars" && r.Method == http.MethodGet:
		prefix := r.URL.Query().Get("prefix")
		out := []*api.VariableMetadata{}
		for p, v := range f.vars {
			if strings.HasPrefix(p, prefix) {
				out = append(out, &api.VariableMetadata{Path: p, CreateIndex: v.CreateIndex, ModifyIndex: v.ModifyIndex})
			}
		}
		f.reply(w, out)
	case path == "/v1/nodes" && r.Method == http.MethodGet:
		f.reply(w, nonNil(f.nodes))
	case strings.HasPrefix(path, "/v1/node/") && strings.HasSuffix(path, "/allocations"):
		f.reply(w, nonNil(f.nodeAllocs[strings.TrimSuffix(strings.TrimPrefix(path, "/v1/node/"), "/allocations")]))
	case path == "/v1/jobs" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		f.register(w, r)
	case path == "/v1/jobs" && r.Method == http.MethodGet:
		f.list(w, r)
	case strings.HasPrefix(path, "/v1/var/"):
		f.variable(w, r, strings.TrimPrefix(path, "/v1/var/"))
	case strings.HasPrefix(path, "/v1/job/"):
		rest := strings.TrimPrefix(path, "/v1/job/")
		id, sub, _ := strings.Cut(rest, "/")
		f.job(w, r, id, sub)
	default:
		http.Error(w, "no such endpoint "+r.Method+" "+path, http.StatusNotFound)
	}
}

// block answers a blocking query as Nomad does: not before the index moves
// past the one asked for, or the wait passes.
func (f *fakeNomad) block(r *http.Request) {
	q := r.URL.Query()
	if r.Method != http.MethodGet || q.Get("index") == "" {
		return
	}
	idx, _ := strconv.ParseUint(q.Get("index"), 10, 64)
	wait, err := time.ParseDuration(q.Get("wait"))
	if err != nil || wait <= 0 {
		wait = 5 * time.Minute
	}
	f.mu.Lock()
	f.blocking = append(f.blocking, fmt.Sprintf("%s index=%s wait=%s", r.URL.Path, q.Get("index"), q.Get("wait")))
	f.mu.Unlock()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) && r.Context().Err() == nil {
		f.mu.Lock()
		moved := f.index > idx
		f.mu.Unlock()
		if moved {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fakeNomad) reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil && !isHangUp(err) {
		f.t.Errorf("fake nomad: encode reply: %v", err)
	}
}

func (f *fakeNomad) register(w http.ResponseWriter, r *http.Request) {
	var raw map[string]any
	var req api.JobRegisterRequest
	body := readBody(f.t, r)
	if err := json.Unmarshal(body, &raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Job == nil || req.Job.ID == nil {
		http.Error(w, "bad register request", http.StatusBadRequest)
		return
	}
	f.registers = append(f.registers, req)
	f.rawRegister = append(f.rawRegister, raw)
	id := *req.Job.ID
	cur := f.jobs[id]
	if req.EnforceIndex {
		switch {
		case req.JobModifyIndex == 0 && cur != nil:
			http.Error(w, "Enforcing job modify index 0: job already exists", http.StatusBadRequest)
			return
		case req.JobModifyIndex != 0 && (cur == nil || *cur.JobModifyIndex != req.JobModifyIndex):
			http.Error(w, fmt.Sprintf("Enforcing job modify index %d: job exists with conflicting job modify index", req.JobModifyIndex), http.StatusBadRequest)
			return
		}
	}
	job := req.Job
	for _, g := range job.TaskGroups {
		if req.PreserveCounts && cur != nil {
			for _, cg := range cur.TaskGroups {
				if *cg.Name == *g.Name {
					g.Count = new(*cg.Count)
				}
			}
		}
		if s := g.Scaling; s != nil && (int64(*g.Count) < *s.Min || int64(*g.Count) > *s.Max) {
			http.Error(w, fmt.Sprintf("1 error occurred:\n\t* Task group count %d is outside its scaling bounds", *g.Count), http.StatusBadRequest)
			return
		}
	}
	f.index++
	version := uint64(0)
	if cur != nil {
		version = *cur.Version + 1
	}
	job.Version, job.JobModifyIndex, job.ModifyIndex = new(version), new(f.index), new(f.index)
	job.Stop = new(false)
	f.jobs[id] = job
	f.reply(w, api.JobRegisterResponse{EvalID: fmt.Sprintf("eval-%d", f.index), JobModifyIndex: f.index})
}

func (f *fakeNomad) list(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("prefix")
	withMeta := r.URL.Query().Get("meta") == "true"
	out := []*api.JobListStub{}
	for id, j := range f.jobs {
		if !strings.HasPrefix(id, prefix) {
			continue
		}
		s := &api.JobListStub{ID: id, Name: id, Type: *j.Type, Stop: *j.Stop, JobModifyIndex: *j.JobModifyIndex}
		if j.ModifyIndex != nil {
			s.ModifyIndex = *j.ModifyIndex
		}
		if withMeta {
			s.Meta = j.Meta
		}
		out = append(out, s)
	}
	f.reply(w, out)
}

func (f *fakeNomad) job(w http.ResponseWriter, r *http.Request, id, sub string) {
	job := f.jobs[id]
	switch {
	case sub == "" && r.Method == http.MethodGet:
		if job == nil {
			http.Error(w, "job not found", http.StatusNotFound)
			return
		}
		f.reply(w, job)
	case sub == "" && r.Method == http.MethodDelete:
		purge := r.URL.Query().Get("purge") == "true"
		f.deregisters = append(f.deregisters, fmt.Sprintf("%s purge=%t", id, purge))
		if job == nil {
			http.Error(w, "job not found", http.StatusNotFound)
			return
		}
		f.index++
		if purge {
			delete(f.jobs, id)
			delete(f.allocs, id)
		} else {
			job.Stop = new(true)
		}
		f.reply(w, api.JobDeregisterResponse{EvalID: fmt.Sprintf("eval-%d", f.index)})
	case sub == "scale" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		var req api.ScalingRequest
		if err := json.Unmarshal(readBody(f.t, r), &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.scales = append(f.scales, req)
		if job == nil {
			http.Error(w, "job not found", http.StatusNotFound)
			return
		}
		if f.deploying[id] {
			http.Error(w, "job scaling blocked due to active deployment", http.StatusBadRequest)
			return
		}
		for _, g := range job.TaskGroups {
			if *g.Name != req.Target["Group"] {
				continue
			}
			if s := g.Scaling; s != nil && (*req.Count < *s.Min || *req.Count > *s.Max) {
				http.Error(w, "group count was greater than scaling policy maximum or less than minimum", http.StatusBadRequest)
				return
			}
			f.index++
			g.Count = new(int(*req.Count))
			*job.Version++
			job.JobModifyIndex, job.ModifyIndex = new(f.index), new(f.index)
			resp := api.JobRegisterResponse{EvalID: fmt.Sprintf("eval-%d", f.index), JobModifyIndex: f.index}
			if f.scaleNoIndex {
				resp.JobModifyIndex = 0
			}
			f.reply(w, resp)
			return
		}
		http.Error(w, "group not found", http.StatusBadRequest)
	case sub == "allocations":
		f.reply(w, nonNil(f.allocs[id]))
	case sub == "evaluations":
		f.reply(w, nonNil(f.evals[id]))
	case sub == "deployment":
		f.reply(w, f.latest[id]) // null when there is none, as Nomad answers
	case sub == "summary":
		s := f.summaries[id]
		if s == nil {
			if job == nil {
				http.Error(w, "job not found", http.StatusNotFound)
				return
			}
			s = &api.JobSummary{JobID: id, Summary: map[string]api.TaskGroupSummary{}}
		}
		f.reply(w, s)
	default:
		http.Error(w, "no such endpoint "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}
}

func (f *fakeNomad) variable(w http.ResponseWriter, r *http.Request, path string) {
	cur := f.vars[path]
	switch r.Method {
	case http.MethodGet:
		if cur == nil {
			http.Error(w, "variable not found", http.StatusNotFound)
			return
		}
		f.reply(w, cur)
	case http.MethodPut:
		var v api.Variable
		if err := json.Unmarshal(readBody(f.t, r), &v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if len(v.Items) == 0 {
			http.Error(w, "variable missing required Items object", http.StatusBadRequest)
			return
		}
		if cas := r.URL.Query().Get("cas"); cas != "" {
			want, _ := strconv.ParseUint(cas, 10, 64)
			if (want == 0 && cur != nil) || (want != 0 && (cur == nil || cur.ModifyIndex != want)) {
				w.WriteHeader(http.StatusConflict)
				f.reply(w, cur)
				return
			}
		}
		f.index++
		f.varWrites++
		v.Path = path
		v.ModifyIndex = f.index
		if cur == nil {
			v.CreateIndex = f.index
		} else {
			v.CreateIndex = cur.CreateIndex
		}
		f.vars[path] = &v
		f.reply(w, &v)
	case http.MethodDelete:
		if _, ok := f.vars[path]; ok {
			f.index++
		}
		delete(f.vars, path)
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// isHangUp reports whether a reply failed because the client went away
// (a watch cancelled mid-answer), which is no fault of the fake.
func isHangUp(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func readBody(t testing.TB, r *http.Request) []byte {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("fake nomad: read body: %v", err)
	}
	return b
}

// setAllocs sets the allocations of a job (a test's view of the cluster).
func (f *fakeNomad) setAllocs(id string, allocs ...*api.AllocationListStub) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	for _, a := range allocs {
		if a.ModifyIndex == 0 {
			a.ModifyIndex = f.index
		}
	}
	f.allocs[id] = allocs
}

// editJob changes a job as someone outside Ferry would (nomad job run of
// an edited file that keeps the meta): a new version and JobModifyIndex.
func (f *fakeNomad) editJob(id string, edit func(*api.Job)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.jobs[id]
	edit(j)
	f.index++
	*j.Version++
	j.JobModifyIndex, j.ModifyIndex = new(f.index), new(f.index)
}

// editVariable changes a variable's item as someone outside Ferry would.
func (f *fakeNomad) editVariable(path, key, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.vars[path]
	f.index++
	v.Items[key] = value
	v.ModifyIndex = f.index
}

// passRequests is how many requests the fake has had that were not
// blocking queries (the watch's, the only ones with an index).
func (f *fakeNomad) passRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nonBlocking
}

func (f *fakeNomad) setPlacementFailure(id string, queued int, evals ...*api.Evaluation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.summaries[id] = &api.JobSummary{JobID: id, Summary: map[string]api.TaskGroupSummary{GroupName: {Queued: queued}}}
	f.evals[id] = evals
}

func (f *fakeNomad) snapshot() (jobs map[string]*api.Job, registers []api.JobRegisterRequest, raw []map[string]any, scales []api.ScalingRequest, deregisters []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	jobs = map[string]*api.Job{}
	for k, v := range f.jobs {
		jobs[k] = v
	}
	return jobs, append([]api.JobRegisterRequest(nil), f.registers...), append([]map[string]any(nil), f.rawRegister...),
		append([]api.ScalingRequest(nil), f.scales...), append([]string(nil), f.deregisters...)
}
