package fabric

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The loader of BenchmarkALBVersusDirect/lb-own-cpu is this test binary run as
// TestALBLoader with these variables: it serves the pod's HTTP in the pod's node namespace,
// and for each URL read from stdin loads it for a round from the internet namespace and
// writes the loadResult as one JSON line prefixed with albLoaderPrefix.
const (
	envLoaderPod      = "FLATNET_ALB_LOADER_POD"      // namespace,address:port
	envLoaderInternet = "FLATNET_ALB_LOADER_INTERNET" // the client's namespace
	albLoaderPrefix   = "albloader "
)

// albLoader is a running loader process.
type albLoader struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// startALBLoader starts the loader pinned to cpu with GOMAXPROCS 1 and waits until its pod
// serves.
func startALBLoader(b *testing.B, podNS string, pod netip.AddrPort, internetNS string, cpu int) *albLoader {
	b.Helper()
	cmd := exec.Command("taskset", "-c", strconv.Itoa(cpu), os.Args[0], "-test.run", "^TestALBLoader$", "-test.count", "1")
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1", envLoaderInternet+"="+internetNS)
	if podNS != "" {
		cmd.Env = append(cmd.Env, envLoaderPod+"="+podNS+","+pod.String())
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the loader (taskset and this test binary): %v", err)
	}
	l := &albLoader{cmd: cmd, in: in, out: bufio.NewReader(out)}
	b.Cleanup(func() {
		_ = in.Close() // the loader ends at EOF
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	if _, err := l.next(); err != nil {
		b.Fatalf("the loader did not start: %v", err)
	}
	return l
}

// next reads the loader's next line of ours.
func (l *albLoader) next() (string, error) {
	for {
		line, err := l.out.ReadString('\n')
		if rest, ok := strings.CutPrefix(line, albLoaderPrefix); ok {
			return strings.TrimSpace(rest), nil
		}
		if err != nil {
			return "", fmt.Errorf("loader output ended: %w", err)
		}
	}
}

// cpu asks a pod-only loader for its CPU time so far.
func (l *albLoader) cpu(b *testing.B) time.Duration {
	if _, err := fmt.Fprintln(l.in, "cpu"); err != nil {
		b.Fatalf("ask the pod's loader: %v", err)
	}
	line, err := l.next()
	if err != nil {
		b.Fatal(err)
	}
	ns, err := strconv.ParseInt(line, 10, 64)
	if err != nil {
		b.Fatalf("the pod's loader's answer %q: %v", line, err)
	}
	return time.Duration(ns)
}

// load has the loader load url for one round.
func (l *albLoader) load(url string) (loadResult, error) {
	var r loadResult
	if _, err := fmt.Fprintln(l.in, url); err != nil {
		return r, fmt.Errorf("ask the loader: %w", err)
	}
	line, err := l.next()
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return r, fmt.Errorf("the loader's answer %.80q: %w", line, err)
	}
	return r, nil
}

// TestALBLoader is the loader process of BenchmarkALBVersusDirect/lb-own-cpu, not a test:
// without its variables it skips.
func TestALBLoader(t *testing.T) {
	pod, internet := os.Getenv(envLoaderPod), os.Getenv(envLoaderInternet)
	if pod == "" && internet == "" {
		t.Skip("the loader process of BenchmarkALBVersusDirect/lb-own-cpu")
	}
	if pod != "" {
		podNS, podAddr, _ := strings.Cut(pod, ",")
		ln, err := listenIn(podNS, podAddr)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok")
		})}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	if internet == "" {
		// The pod alone: each line asks for this process's CPU time so far.
		fmt.Println(albLoaderPrefix + "ready")
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			fmt.Println(albLoaderPrefix + strconv.FormatInt(int64(processCPU()), 10))
		}
		return
	}
	client := nsClient(internet)
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 4 * albBenchWorkers
	get := func(url string) (int, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}
	fmt.Println(albLoaderPrefix + "ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cpu0 := processCPU()
		r := loadRound(get, in.Text())
		r.CPU = processCPU() - cpu0
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(albLoaderPrefix + string(line))
	}
}

// pinProcess binds every thread of this process to cpu (threads started later inherit it) and
// sets GOMAXPROCS to 1; the function returned undoes both.
func pinProcess(b *testing.B, cpu int) func() {
	b.Helper()
	var one, all unix.CPUSet
	one.Set(cpu)
	for i := range runtime.NumCPU() {
		all.Set(i)
	}
	setAll := func(set *unix.CPUSet) error {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin thread %d: %w", tid, err)
			}
		}
		return nil
	}
	procs := runtime.GOMAXPROCS(1)
	if err := setAll(&one); err != nil {
		b.Fatal(err)
	}
	return func() {
		runtime.GOMAXPROCS(procs)
		if err := setAll(&all); err != nil {
			b.Error(err)
		}
	}
}
