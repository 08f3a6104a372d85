// Package cli is the fakecloud command line: `fakecloud serve` runs the emulated cloud, and
// `fakecloud <resource> <verb>` drives it through the Go client, printing tables for people or
// JSON for scripts. cmd/fakecloud only calls Main.
package cli
