// Package wal is the write-ahead log under flatnet's durable stores (fakecloud's state and
// ipamd's datastore): records framed with a checksum, a log file written in place into
// preallocated zeros, a scanner that tells a torn last record from damage, and the atomic
// snapshot file a log is compacted into. What a record means, when to sync and how writers
// share a sync are the stores' own; this package only keeps the bytes honest.
//
// A record is one line: the CRC-32C of the body in eight hex digits, a space, the body, a
// newline. The body is the caller's (JSON, which holds no newline) and must carry the record's
// sequence number: Read asks the caller for it and accepts only records numbered one after
// another. A line that starts with '{' is, when ReadOptions.Unframed allows it, a body written
// without a checksum by a store older than this package (fakecloud's first log format).
//
// The log file is filled with synced zeros ahead of its last record (Log), so that an
// fdatasync after a record flushes that data block only: the file's size and block map do not
// change and the filesystem needs no journal commit. A crash leaves the records followed by
// zeros, or by a torn record and zeros; Read stops there.
package wal
