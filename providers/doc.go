// Package providers is flatnet's one cloud seam: the interfaces its consumers need from a cloud
// (IPAM for ipamd, LoadBalancing for lbcontroller), the one error taxonomy every driver maps its
// cloud's errors onto (errors.go, with Retryable deciding what is worth repeating), the one call
// Policy (retries with backoff, rate limit, concurrency cap, circuit breaker, client tokens), and
// the Registry that maps a --cloud name to a driver. Drivers live in subpackages, one per cloud
// (providers/fakecloud, providers/aws), import nothing of the consumers, and pass the contract
// suite in providers/providertest; providers/all lists them for the binaries. docs/providers.md
// explains how to write one.
package providers
