package nodeagent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// ContainerMain is the "container" subcommand: it moves into the pod's network namespace and
// executes argv there. A container is this program re-executed by the agent, so that its process
// is inside the namespace from its first instruction: the thread that calls execve keeps its
// namespaces, and execve leaves only that thread.
func ContainerMain(netnsFile string, argv []string) error {
	if len(argv) == 0 {
		return errors.New("container: no command to run: give it after --")
	}
	runtime.LockOSThread() // never unlocked: this thread becomes the process
	f, err := os.Open(netnsFile)
	if err != nil {
		return fmt.Errorf("container: open the pod namespace: %w", err)
	}
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("container: enter the pod namespace %s: %w", netnsFile, err)
	}
	f.Close()
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("container: %w (a flatnet.io/generic container runs a program of the node's filesystem, found through PATH)", err)
	}
	return fmt.Errorf("container: execute %s: %w", path, syscall.Exec(path, argv, os.Environ()))
}

// containerArgv is the command line of a process run inside a pod's namespace.
func containerArgv(self, netnsName string, argv []string) []string {
	return append([]string{self, "container", "--netns", netnsPath(netnsName), "--"}, argv...)
}
