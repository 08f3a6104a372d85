// Command flatnet-cni is the flatnet CNI plugin; container runtimes execute it with the CNI_*
// environment and the network configuration on stdin. See package cni.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/flatnet/flatnet/cni"
)

func main() {
	skel.PluginMainFuncs(cni.Funcs(), cni.VersionInfo(), cni.About)
}
