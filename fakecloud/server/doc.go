// Package server serves fakecloud's HTTP+JSON API over a state.Store: it authenticates callers,
// decodes requests strictly, throttles and injects faults the way a real cloud misbehaves, and
// answers EC2-style errors, with metrics and structured logs. It is public so that other
// components' tests can run fakecloud in-process (see OpenStore and New).
package server
