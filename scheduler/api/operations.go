package api

import (
	"errors"
	"net/http"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/store"
)

func operationView(op store.Operation) operationDescription {
	d := operationDescription{
		ConnectorArn:            op.ConnectorArn,
		ConnectorOperationArn:   op.Arn,
		ConnectorOperationState: op.State,
		ConnectorOperationType:  op.Type,
		OperationSteps:          make([]operationStep, 0, len(op.Steps)),
		ErrorInfo:               describeState(op.ErrorInfo),
		CreationTime:            timestamp(op.CreationTime),
		Reason:                  op.Reason,
	}
	for _, st := range op.Steps {
		d.OperationSteps = append(d.OperationSteps, operationStep{StepType: st.Type, StepState: st.State})
	}
	if op.OriginCapacity != nil {
		d.OriginWorkerSetting = &workerSetting{Capacity: describeCapacity(op.OriginCapacity, op.OriginWorkers)}
	}
	if op.TargetCapacity != nil {
		d.TargetWorkerSetting = &workerSetting{Capacity: describeCapacity(op.TargetCapacity, op.TargetWorkers)}
	}
	d.OriginConnectorConfiguration = jobs.RedactConfig(op.OriginConfig)
	d.TargetConnectorConfiguration = jobs.RedactConfig(op.TargetConfig)
	if op.EndTime != nil {
		d.EndTime = timestamp(*op.EndTime)
	}
	return d
}

func (s *Server) describeConnectorOperation(w http.ResponseWriter, r *http.Request, arn string) error {
	a, err := parseARN(arn, jobs.KindConnectorOperation, "connectorOperationArn")
	if err != nil {
		return err
	}
	e, err := s.st.Operations.Get(r.Context(), store.OperationKey(a.Name, a.Sub))
	if errors.Is(err, store.ErrNotFound) || (err == nil && arnID(e.Value.ConnectorArn) != a.ID) {
		return notFound("connector operation %s not found", arn)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, operationView(e.Value))
}

// listConnectorOperations lists the operations of one connector
// incarnation, newest first.
func (s *Server) listConnectorOperations(w http.ResponseWriter, r *http.Request, arn string) error {
	ctx := r.Context()
	max, err := maxResults(r)
	if err != nil {
		return err
	}
	a, _, err := s.getConnector(ctx, arn)
	if err != nil {
		return err
	}
	entries, err := s.st.Operations.List(ctx, a.Name+".")
	if err != nil {
		return err
	}
	mine := entries[:0]
	for _, e := range entries {
		if arnID(e.Value.ConnectorArn) == a.ID {
			mine = append(mine, e)
		}
	}
	page, next, err := paginate(mine, func(e store.Entry[store.Operation]) string {
		return timestamp(e.Value.CreationTime) + "|" + e.Key
	}, true, r.URL.Query().Get("nextToken"), max)
	if err != nil {
		return err
	}
	out := make([]operationSummary, 0, len(page))
	for _, e := range page {
		op := e.Value
		sum := operationSummary{
			ConnectorOperationArn: op.Arn, ConnectorOperationType: op.Type,
			ConnectorOperationState: op.State, CreationTime: timestamp(op.CreationTime),
		}
		if op.EndTime != nil {
			sum.EndTime = timestamp(*op.EndTime)
		}
		out = append(out, sum)
	}
	resp := map[string]any{"connectorOperations": out}
	if next != "" {
		resp["nextToken"] = next
	}
	return writeJSON(w, resp)
}
