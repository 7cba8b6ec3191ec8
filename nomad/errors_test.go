package nomad

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"
)

// TestErrorsSayWhatRetryingCanDo: what Nomad answers decides whether an
// error is permanent (a person must act: the connector fails with the
// message) or says Nomad is unavailable (the reconciler backs off as a
// whole), as the scheduler reads them through the methods alone.
func TestErrorsSayWhatRetryingCanDo(t *testing.T) {
	type kind interface {
		Permanent() bool
		Unavailable() bool
	}
	for name, tc := range map[string]struct {
		status          int
		body            string
		perm, unavail   bool
		messageContains string
	}{
		"acl denied":        {http.StatusForbidden, "Permission denied", true, false, "Permission denied"},
		"invalid job":       {http.StatusInternalServerError, "1 error occurred:\n\t* Task group workers validation failed: minimum CPU value is 1", true, false, "minimum CPU value"},
		"missing namespace": {http.StatusInternalServerError, "1 error occurred:\n\t* job \"ferry-x\" is in nonexistent namespace \"nope\"", true, false, "nonexistent namespace"},
		"no leader":         {http.StatusInternalServerError, "No cluster leader", false, true, ""},
		"gateway":           {http.StatusBadGateway, "bad gateway", false, true, ""},
		"lost race":         {http.StatusBadRequest, "Enforcing job modify index 7: job exists with conflicting job modify index: 8", false, false, ""},
		"active deployment": {http.StatusBadRequest, "job scaling blocked due to active deployment", false, false, ""},
		"rate limited":      {http.StatusTooManyRequests, "slow down", false, false, ""},
		"bad request":       {http.StatusBadRequest, "variable missing required Items object", true, false, "Items"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeNomad(t)
			dep := newTestDeployer(t, f.start(t).URL)
			f.failOn("PUT /v1/jobs", tc.status, tc.body)
			err := dep.Apply(ctxT(t), testDeployment())
			if err == nil {
				t.Fatal("apply succeeded")
			}
			var k kind
			if !errors.As(err, &k) {
				if tc.perm || tc.unavail {
					t.Fatalf("error %v says nothing of retrying", err)
				}
				return
			}
			if k.Permanent() != tc.perm || k.Unavailable() != tc.unavail {
				t.Errorf("%v: permanent %v unavailable %v, want %v %v", err, k.Permanent(), k.Unavailable(), tc.perm, tc.unavail)
			}
			if !strings.Contains(err.Error(), tc.messageContains) {
				t.Errorf("error %q does not say %q", err, tc.messageContains)
			}
		})
	}
}

// TestForeignJobIsPermanent: a job under the connector's ID that is not
// Ferry's is refused for good, naming the job.
func TestForeignJobIsPermanent(t *testing.T) {
	f := newFakeNomad(t)
	dep := newTestDeployer(t, f.start(t).URL)
	f.jobs["ferry-orders-s3"] = &api.Job{ID: new("ferry-orders-s3"), Type: new("service"), Stop: new(false), JobModifyIndex: new(uint64(5)), Version: new(uint64(0))}
	err := dep.Apply(ctxT(t), testDeployment())
	var e *Error
	if !errors.As(err, &e) || !e.Permanent() || !strings.Contains(err.Error(), "ferry-orders-s3") {
		t.Errorf("apply over a foreign job: %v", err)
	}
}
