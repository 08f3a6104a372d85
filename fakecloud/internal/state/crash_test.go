package state

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

const crashChildEnv = "FAKECLOUD_STATE_CRASH_CHILD"

// TestCrashChild is the process that gets killed: it assigns addresses from 16 goroutines and
// prints each one only after the call has returned success.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		return // only meaningful when re-executed by TestKill9LosesNoAcknowledgedAssignment
	}
	s, err := Open(Config{StateFile: path})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	d, _ := s.DescribeNetworkInterfaces(admin(), &api.DescribeNetworkInterfacesRequest{})
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for k := g; ; k++ {
				eni := d.NetworkInterfaces[k%len(d.NetworkInterfaces)].NetworkInterfaceID
				r, err := s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, SecondaryPrivateIPAddressCount: 1})
				if err != nil {
					continue // a full interface; the parent kills us long before the subnet fills
				}
				mu.Lock()
				fmt.Fprintf(out, "%s %s\n", eni, r.AssignedPrivateIPAddresses[0])
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// Acceptance 3: kill -9 during concurrent assigns, restart: every acknowledged assignment is
// there, and no address is held twice.
func TestKill9LosesNoAcknowledgedAssignment(t *testing.T) {
	path := t.TempDir() + "/state.json"
	s := openT(t, Config{StateFile: path})
	w := newWorld(t, s, "10.30.0.0/16", "10.30.0.0/16")
	w.run(t, "m5.16xlarge", 150) // 150 interfaces x 49 free slots, more than three rounds fill
	mustOK(t, s.Close())

	for round := range 3 {
		// Kill at a different point each round, but only once the child is well under way, so
		// the test does not depend on how fast a loaded machine starts a process.
		acked := runAndKill(t, path, 200+150*round, time.Duration(10*round)*time.Millisecond)
		if len(acked) == 0 {
			t.Fatalf("round %d: the child acknowledged nothing before the kill", round)
		}
		s2, err := Open(Config{StateFile: path})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		held := map[string]string{} // address -> interface
		d, err := s2.DescribeNetworkInterfaces(admin(), &api.DescribeNetworkInterfacesRequest{})
		mustOK(t, err)
		for _, ni := range d.NetworkInterfaces {
			for _, a := range ni.PrivateIPAddresses {
				if other, dup := held[a.PrivateIPAddress]; dup {
					t.Fatalf("round %d: %s held by %s and %s", round, a.PrivateIPAddress, other, ni.NetworkInterfaceID)
				}
				held[a.PrivateIPAddress] = ni.NetworkInterfaceID
			}
		}
		for ip, eni := range acked {
			if held[ip] != eni {
				t.Fatalf("round %d: acknowledged %s on %s is lost after restart (held by %q)", round, ip, eni, held[ip])
			}
		}
		t.Logf("round %d: %d acknowledged assignments survived kill -9; %d addresses held", round, len(acked), len(held))
		mustOK(t, s2.Close())
	}
}

// runAndKill starts the child and kills it with SIGKILL once it has acknowledged minAcks
// assignments and a further delay has passed.
func runAndKill(t *testing.T, path string, minAcks int, delay time.Duration) map[string]string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	mustOK(t, err)
	mustOK(t, cmd.Start())
	acked := map[string]string{}
	done, ready := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if eni, ip, ok := strings.Cut(sc.Text(), " "); ok {
				acked[ip] = eni
			}
			if len(acked) == minAcks {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-done:
		t.Fatalf("the child exited after %d acknowledgements, before being killed", len(acked))
	case <-time.After(time.Minute):
		t.Fatal("the child acknowledged too little within a minute")
	}
	time.Sleep(delay)
	mustOK(t, cmd.Process.Signal(syscall.SIGKILL))
	<-done
	_ = cmd.Wait()
	return acked
}
