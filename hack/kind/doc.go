// Package kind holds the tests of hack/kind's scripts (up.sh, down.sh, e2e.sh: flatnet on a kind
// cluster, docs/kind.md). It has no code of its own.
//
// kind and Docker are not on the machines these tests run on, so the tests run the scripts with
// fake kind, docker, helm, kubectl, go and make in front of a PATH of real tools, and real
// everything else: fakecloud serve with its fabric, attaching processes that stand in for the
// kind nodes (each in a network namespace of its own, as a container's), nsenter and nft applying
// the nodes' masquerade table, the fabric attachments the scripts wait for, and down.sh's
// teardown. What they cannot show is kind, Docker, the images and the chart working for real.
package kind
