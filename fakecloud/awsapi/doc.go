// Package awsapi is fakecloud's AWS front end: it serves the EC2 Query API (and the subset of
// ELBv2 fakecloud models) to unmodified AWS clients — the SDKs, the aws CLI — on fakecloud's own
// listener and state. It verifies each request's Signature Version 4 against the keys fakecloud
// issues (package creds), reads the Query parameters (package query), turns them into fakecloud's
// own requests, runs those through the same pipeline as the JSON API (a Backend: authorization,
// throttling, injected faults, eventual consistency, metrics, logs) and answers in the XML
// shapes and with the error codes the AWS service uses. docs/fakecloud-aws.md describes what is
// served.
package awsapi
