// Package pool is ipamd's warm-pool policy as one pure function: given what the node holds (its
// interfaces and their free, cooling and assigned addresses), the instance type's limits, the
// configuration and the demand, Decide returns the cloud actions to take next. It performs no I/O
// and reads no clock: the caller passes the time in, executes the plan and calls Decide again.
//
// The model, in one paragraph: addresses that are free and past their cooldown are "available";
// cooling addresses are not. When available addresses fall below the low watermark plus the
// allocations waiting, the pool grows by a batch that scales with observed demand (waiting plus
// recent allocations, capped by MaxBatch and by the high watermark), filling existing interfaces
// in device-index order before attaching a new one. When the pool has been idle for IdleRelease,
// available addresses above the high watermark are given back (never an assigned or cooling one),
// and a secondary interface ipamd attached that holds nothing else is detached. In prefix mode the
// unit of growth and release is a /28 prefix (16 addresses), and only a prefix whose every address
// is available can be given back.
package pool
