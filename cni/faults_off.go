//go:build !flatnetfaults

package cni

// fault is the failure-injection hook; without the flatnetfaults build tag it never fires and
// the release binary carries no trace of it (see faults_on.go).
func fault(string) error { return nil }
