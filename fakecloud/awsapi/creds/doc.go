// Package creds issues the AWS access keys fakecloud accepts: the administrator's long-term key
// pair (kept in a shared-credentials file, as the aws CLI and SDKs read it) and each instance's
// temporary credentials, which are derived from the instance's fakecloud token, so that they need
// no state of their own, survive restarts, and die with the instance. It also renders what EC2's
// instance metadata service shows of them. Standard library only: the metadata service imports it.
package creds
