// Package store is ipamd's datastore: the node's interfaces and every pod address with its state
// (free, assigned to an owner, or free but cooling down since its release), in go-memdb, made
// durable by a write-ahead log.
//
// Every change is one WAL record, written into the log before the memdb transaction is visible
// to readers and before the write returns, so a reader (and the plugin waiting for an
// allocation) only ever sees state the log holds. How soon the log reaches the disk is
// Options.SyncInterval (ipamd's --state-sync):
//
//   - 0: every record is fdatasync'ed before its write returns (group-committed: concurrent
//     writers share one sync). Nothing acknowledged is lost by kill -9 or by a machine crash.
//   - positive (ipamd's default, 100ms): a write returns once its records are written with
//     write(2). The page cache belongs to the kernel, not to the process, so kill -9 of ipamd
//     at any instant still loses nothing acknowledged. A background flush fdatasyncs them at
//     most that long after the first unsynced one; only a machine crash within that window can
//     lose them, and then every pod of the node died with the machine: start-up reconcile
//     releases the allocations whose pods are gone and adopts the cloud's addresses the record
//     lacks.
//
// The log is internal/wal (shared with fakecloud's state): a record is one line, "crc32 json",
// applied by the same function at run time and at replay.
// At open, a torn last line (a write cut short) is cut off. Damage before the last record is
// judged by the boot ID recorded in the state directory at every open: from an earlier boot it
// is what a power loss does to an unsynced tail (blocks reach the disk in any order, so a hole
// can precede later records), and the log is cut at the first damage, with the discarded bytes
// and records logged; nothing after a hole is ever replayed. Within the same boot the page
// cache kept the log whole, so damage is corruption and Open refuses it. The log is compacted
// into an atomically replaced, fsync'ed snapshot once it grows long; the snapshot is always
// synced, whatever the interval.
//
// Cooling down is not a stored state: a free address is cooling while its release is younger
// than the cooldown. Free addresses are indexed by release time, so the least recently released
// one is handed out first and the cooling ones are simply not reached yet.
package store
