// Package store is ipamd's datastore: the node's interfaces and every pod address with its state
// (free, assigned to an owner, or free but cooling down since its release), in go-memdb, made
// durable by a write-ahead log.
//
// Every change is one WAL record, written and fdatasync'ed before the memdb transaction commits,
// so a reader (and the plugin waiting for an allocation) only ever sees durable state, and kill -9
// at any instant loses nothing that was acknowledged. A record is one line, "crc32 json", applied
// by the same function at run time and at replay; a torn last line is cut off at open. The log is
// compacted into an atomically replaced snapshot once it grows long.
//
// Cooling down is not a stored state: a free address is cooling while its release is younger
// than the cooldown. Free addresses are indexed by release time, so the least recently released
// one is handed out first and the cooling ones are simply not reached yet.
package store
