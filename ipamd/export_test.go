package ipamd

// BreakStore closes the datastore under a running daemon, as a disk that goes away would: its
// next write fails.
func BreakStore(d *Daemon) { _ = d.store.Close() }
