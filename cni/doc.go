// Package cni is the flatnet CNI plugin (CNI spec 1.1: ADD, DEL, CHECK, STATUS, GC, VERSION). Its
// one job: wire a pod to the node with an underlay address leased from ipamd — a veth created in
// the pod's netns and moved to the host, IP/32 on the pod interface, a default route via
// 169.254.1.1 with a permanent neighbour entry, a host /32 route and, for addresses of a secondary
// node interface, the two policy rules of docs/architecture.md#pod-datapath — and take it all
// down again without leaks.
//
// The binary's import graph holds only the CNI libraries, containernetworking/plugins' ns helper,
// netlink, x/sys, ipamd/wire and the standard library (make verify checks it): no Kubernetes, no
// memdb, no Prometheus, no logging library. cmd/flatnet-cni only hands Funcs to skel.
//
// The host side of the datapath is the network namespace the plugin runs in; the tests run the
// plugin inside a "node" netns they create, never in the root namespace.
package cni
