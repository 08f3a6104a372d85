package server

import (
	"context"
	"errors"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// The control actions: faults, change stream, snapshot.

func (s *Server) setFault(_ context.Context, req *api.SetFaultRequest) (*api.SetFaultResponse, error) {
	if err := s.faults.Set(req.Fault, req.Seed); err != nil {
		return nil, err
	}
	s.log.Info("fault set", "action", req.Fault.Action, "error_rate", req.Fault.ErrorRate,
		"error_code", req.Fault.ErrorCode, "latency_ms", req.Fault.LatencyMillis,
		"visibility_lag_ms", req.Fault.VisibilityLagMillis, "seed", req.Seed)
	return &api.SetFaultResponse{}, nil
}

func (s *Server) listFaults(context.Context, *api.ListFaultsRequest) (*api.ListFaultsResponse, error) {
	return &api.ListFaultsResponse{Faults: s.faults.List()}, nil
}

func (s *Server) clearFaults(_ context.Context, req *api.ClearFaultsRequest) (*api.ClearFaultsResponse, error) {
	if err := s.faults.Clear(req.Action); err != nil {
		return nil, err
	}
	s.log.Info("faults cleared", "action", req.Action)
	return &api.ClearFaultsResponse{}, nil
}

// getChanges long-polls the store's change stream for at most WaitMillis, capped by MaxWait, and
// returns early when the server closes.
func (s *Server) getChanges(ctx context.Context, req *api.GetChangesRequest) (*api.GetChangesResponse, error) {
	if req.WaitMillis < 0 {
		return nil, api.Errorf(api.CodeInvalidParameterValue, "WaitMillis %d is negative: use 0 (no wait) up to %d", req.WaitMillis, s.maxWait.Milliseconds())
	}
	wait := s.maxWait
	if int64(req.WaitMillis) < s.maxWait.Milliseconds() {
		wait = time.Duration(req.WaitMillis) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	stop := context.AfterFunc(s.closing, cancel)
	defer stop()
	resp, err := s.store.WaitChanges(ctx, req.Since)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &api.GetChangesResponse{Seq: req.Since, Changes: []api.Change{}}, nil
	}
	return resp, err
}

func (s *Server) getSnapshot(context.Context, *api.GetSnapshotRequest) (*api.GetSnapshotResponse, error) {
	return &api.GetSnapshotResponse{Snapshot: *s.store.Snapshot()}, nil
}
