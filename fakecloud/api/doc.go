// Package api holds fakecloud's public wire contract: resource and request/response types, action
// names and error codes. It is what a driver author reads and what the client and server share.
// It imports nothing but the standard library.
package api
