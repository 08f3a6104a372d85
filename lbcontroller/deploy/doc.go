// Package deploy makes the cloud match a desired load balancer: a Service's (package model,
// Deploy) or a Gateway's application load balancer (package gateway's model,
// ApplicationLoadBalancer). For a Service it reads what the owner has through ownership tags
// (Observe), diffs it against the model into a plan (PlanDeploy, pure: no cloud calls) and
// applies the plan (Apply), making only the calls that close the gap, in an order that is safe to
// cut at any point (a crash leaves resources that the next pass, or garbage collection, finds by
// their tags). Deleting is deploying nothing.
package deploy
