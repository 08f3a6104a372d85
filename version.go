// Package flatnet holds what every flatnet binary shares about the project itself: its version.
package flatnet

import (
	_ "embed"
	"strings"
)

//go:embed VERSION
var versionFile string

// Version is the project's version (the VERSION file). The Helm chart's version and appVersion
// and the images' tags follow it; charts/chart_test.go and the image build check that they do.
var Version = strings.TrimSpace(versionFile)
