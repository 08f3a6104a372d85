// Package ipamd is the per-node daemon that leases pod addresses from the cloud and hands them to
// the CNI plugin. It is a thin shell around three pure or self-contained parts:
//
//   - pool: the warm-pool planner, a pure function from the node's state and demand to cloud
//     actions;
//   - store: the durable datastore (go-memdb plus a write-ahead log written before every answer
//     and fdatasync'ed within --state-sync);
//   - provider: the cloud contract, the call policy and the drivers.
//
// The shell serves the wire protocol on a unix socket, runs one pool worker goroutine that
// executes plans and resyncs with the cloud (so cloud mutations never race each other), reconciles
// the record, the cloud and the live pods at start, replays the plugin's release spool, programs
// the node through the Datapath interface (ipamd/nodenet), and exposes introspection, metrics and
// health over HTTP. Config (with every default) is in config.go; docs/architecture.md has the
// whole picture.
package ipamd
