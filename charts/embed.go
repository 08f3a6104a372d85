// Package charts carries flatnet's Helm chart inside the binaries that install it (the lab's
// flatnet-lab installs charts/flatnet through the Helm SDK, so the chart it tests is the one in
// the tree it was built from).
package charts

import (
	"embed"
	"io/fs"
)

//go:embed all:flatnet
var files embed.FS

// Flatnet is the flatnet chart's directory (Chart.yaml at its root).
func Flatnet() fs.FS {
	sub, err := fs.Sub(files, "flatnet")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}
