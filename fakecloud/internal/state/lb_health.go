package state

import "github.com/flatnet/flatnet/fakecloud/api"

// ReportTargetHealth records the data plane's health-check verdicts. It is not on the public
// API: the fabric's health checker calls it in-process.
func (s *Store) ReportTargetHealth(reports []api.TargetHealthReport) error {
	_ = reports // recorded once the target tables exist (issue 8, in progress)
	return nil
}
