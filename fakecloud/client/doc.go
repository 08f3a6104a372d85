// Package client is fakecloud's Go SDK: one method per API action over HTTP+JSON. Errors from the
// server come back as *api.Error, so callers branch with errors.Is and api.Retryable; transport
// failures are wrapped. The client never retries: retrying is the caller's policy.
package client
