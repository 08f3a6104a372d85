// Package fault decides, call by call, how fakecloud misbehaves on purpose: injected errors at a
// chosen rate, added latency and a visibility lag, per action or for all, from a seedable random
// source so that a test run can be replayed exactly.
package fault
