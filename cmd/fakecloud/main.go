// Command fakecloud runs the emulated VPC cloud (`fakecloud serve`) and drives it from the shell.
package main

import (
	"os"

	"github.com/flatnet/flatnet/fakecloud/cli"
)

func main() { os.Exit(cli.Main()) }
