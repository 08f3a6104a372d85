// Package provider is the contract between ipamd and a cloud: the five calls ipamd makes
// (Provider), the registry that maps a --cloud name to a driver, and Policy, the one place where
// cloud calls get idempotency tokens, backoff with jitter, a concurrency cap and a circuit
// breaker. Drivers live in subpackages (provider/fakeclouddriver) and import nothing of ipamd but this
// package.
package provider
