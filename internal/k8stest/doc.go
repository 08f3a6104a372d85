// Package k8stest starts a real Kubernetes API server (controller-runtime's envtest: etcd and
// kube-apiserver, no controllers, no nodes) for integration tests, from the binaries that
// make k8s-bins caches outside the tree.
package k8stest
