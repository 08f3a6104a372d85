// Command hello stands for flatnet's binaries in internal/images' tests: a static program that
// says which name it was started as, so a test can run it from an unpacked image.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	fmt.Printf("hello from %s %v\n", filepath.Base(os.Args[0]), os.Args[1:])
}
