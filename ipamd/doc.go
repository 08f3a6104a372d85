// Package ipamd will be the per-node daemon: it leases secondary IPs and /28 prefixes from the cloud
// through a small provider interface it declares itself, keeps a warm pool, serves the CNI plugin
// over a unix socket (wire types in ipamd/wire) and programs the node's routes, rules and SNAT.
//
// So far only ipamd/wire, the protocol the CNI plugin speaks, is here; the daemon lands with
// issue 4.
package ipamd
