package nomad

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// TestEditBehindFerrysBack: a job edited outside Ferry that keeps Ferry's
// meta (so its hash still matches) is registered back as Ferry renders it,
// with and without the watch; so is a variable edited outside Ferry. The
// index Ferry left the job at lives in the variable, so a Deployer that
// never saw the job before (another replica) notices too.
func TestEditBehindFerrysBack(t *testing.T) {
	for _, watched := range []bool{false, true} {
		name := map[bool]string{false: "without watch", true: "with watch"}[watched]
		t.Run(name, func(t *testing.T) {
			f := newFakeNomad(t)
			srv := f.start(t)
			dep := newTestDeployer(t, srv.URL)
			dep.cfg.WatchWait = time.Second
			ctx := ctxT(t)
			d := testDeployment()
			id := JobID(d.Name)
			if watched {
				startWatch(t, dep)
			}
			if err := dep.Apply(ctx, d); err != nil {
				t.Fatal(err)
			}
			if err := dep.Apply(ctx, d); err != nil {
				t.Fatal(err)
			}
			_, regs, _, _, _ := f.snapshot()
			if len(regs) != 1 {
				t.Fatalf("%d registers before the edit, want 1", len(regs))
			}

			drain(dep)
			f.editJob(id, func(j *api.Job) {
				j.TaskGroups[0].Tasks[0].Resources.MemoryMB = new(128)
			})
			// Passes until it converges (at once without the watch; with it,
			// once the watch has seen the edit).
			applyUntil(t, dep, d, func() bool { _, regs, _, _, _ := f.snapshot(); return len(regs) == 2 })
			jobsNow, regs, _, _, _ := f.snapshot()
			if len(regs) != 2 {
				t.Fatalf("%d registers after an edit outside ferry, want 2", len(regs))
			}
			if m := *jobsNow[id].TaskGroups[0].Tasks[0].Resources.MemoryMB; m != 4096 {
				t.Errorf("memory after converging = %d, want 4096", m)
			}
			// Converged: the next pass writes nothing.
			if err := dep.Apply(ctx, d); err != nil {
				t.Fatal(err)
			}
			if _, regs, _, _, _ = f.snapshot(); len(regs) != 2 {
				t.Errorf("%d registers after converging, want still 2", len(regs))
			}

			// Another replica's Deployer (no memory of this one's writes)
			// sees nothing to do, and then an edit.
			other := newTestDeployer(t, srv.URL)
			if err := other.Apply(ctx, d); err != nil {
				t.Fatal(err)
			}
			if _, regs, _, _, _ = f.snapshot(); len(regs) != 2 {
				t.Errorf("a fresh deployer registered a job nobody edited")
			}
			f.editJob(id, func(j *api.Job) { j.TaskGroups[0].Tasks[0].Env["X"] = "y" })
			if err := other.Apply(ctx, d); err != nil {
				t.Fatal(err)
			}
			if jobsNow, regs, _, _, _ = f.snapshot(); len(regs) != 3 || jobsNow[id].TaskGroups[0].Tasks[0].Env["X"] != "" {
				t.Errorf("a fresh deployer missed an edit: %d registers", len(regs))
			}

			// A secret changed in the variable outside Ferry is put back.
			drain(dep)
			path := VariablePath(d.Name)
			f.editVariable(path, "config_aws_secret_access_key", "tampered")
			secret := func() string {
				f.mu.Lock()
				defer f.mu.Unlock()
				return f.vars[path].Items["config_aws_secret_access_key"]
			}
			applyUntil(t, dep, d, func() bool { return secret() != "tampered" })
			got := secret()
			if got != d.Spec.Config["aws.secret.access.key"] {
				t.Errorf("variable after converging holds %q", got)
			}
		})
	}
}

// applyUntil applies d until cond holds (the watch may take a moment to see
// a change), failing after 5 s; without a watch one Apply must do.
func applyUntil(t *testing.T, dep *Deployer, d Deployment, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := dep.Apply(ctxT(t), d); err != nil {
			t.Fatal(err)
		}
		if cond() {
			return
		}
		dep.watch.mu.Lock()
		watching := dep.watch.running
		dep.watch.mu.Unlock()
		if !watching || time.Now().After(deadline) {
			t.Fatal("apply did not converge")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
