// Package state is fakecloud's source of truth: resources in hashicorp/go-memdb, the rules and
// limits of a VPC cloud applied inside single write transactions, a durable write-ahead log, and
// the change stream the fabric and remote watchers follow. Nothing outside fakecloud imports it.
package state
