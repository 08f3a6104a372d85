// Package nodeagent is flatnet's stand-in for the kubelet and a container runtime in the lab: one
// agent per node, running in the node's network namespace, registers the Node and keeps its
// lease, runs the Pods bound to the node as network namespaces wired through the CNI plugin
// (libcni, as containerd calls it) with processes inside them, probes them and reports their
// status. docs/node-agent.md describes the behaviour and the image mapping.
package nodeagent
