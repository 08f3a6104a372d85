// Package providertest is the driver contract suite: the scenarios every cloud driver must pass,
// whatever protocol it speaks, run against an in-process fakecloud. A driver's tests call
// RunIPAM and RunLoadBalancing with a function that starts the cloud side (a
// servertest.Env, whose admin client the suite uses to arrange VPCs, instances and faults) and
// builds the driver under test against it: the fakecloud driver on fakecloud's JSON API, the AWS
// driver on fakecloud's EC2 and ELBv2 Query API. Imported by tests only.
package providertest
