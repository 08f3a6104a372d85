// Package throttle rations fakecloud's API calls the way a real cloud does: one token bucket per
// (caller, action), sized by the action's class, refilled continuously, and driven by explicit
// times so tests can check the bucket math with an injected clock.
package throttle
