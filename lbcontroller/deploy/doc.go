// Package deploy makes the cloud match a desired load balancer (package model): it reads what
// the Service owns through ownership tags, diffs it against the model and makes only the calls
// that close the gap, in an order that is safe to cut at any point (a crash leaves resources
// that the next pass, or garbage collection, finds by their tags). Deleting is deploying
// nothing.
package deploy
