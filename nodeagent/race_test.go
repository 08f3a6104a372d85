//go:build race

package nodeagent

// raceEnabled: the tests run with -race, so the agent they start is built with it too.
const raceEnabled = true
