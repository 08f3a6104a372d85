package fabric

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/internal/netns"
)

// Busy polling of the application load balancers' links.
//
// A cloud's load balancer runs on machines of its own whose data plane never sleeps. Here the L7
// engines share a CPU's scheduler with everything else, and each request through one costs the
// sender a cross-CPU wake-up of the engine's thread (and the receive processing of the engine's
// packets). With busy polling, the Go runtime's network poller (one epoll instance for the whole
// process) keeps polling the load balancer's link for up to DefaultLBBusyPoll before its thread
// sleeps: under load the thread is running when the next packet comes, so waking it costs
// nothing, and the packets into the load balancer's namespace are processed on its CPU. The
// setting is the whole process's: the kernel polls the NAPI context of whichever socket had the
// last event, a load balancer's link when its traffic is what the process serves (another
// NIC with NAPI if the control plane's traffic came last).
//
// Epoll busy-polls the NAPI context of the sockets it reports, so the load balancer's end of
// its veth (eth0) has GRO on, which gives the veth a NAPI context; the router's end has TSO off,
// since a veth puts only packets it could aggregate through NAPI, and a forwarded segment from
// a TSO device is not one (it is segmented at the router instead). These are tuning: a link
// that cannot be set is logged and its load balancer forwards all the same. The per-instance
// setting, EPIOCSPARAMS, is Linux 6.9's: on older kernels (or with polling off) the links are
// left alone and the engines sleep as any process does. Idle, the cost is one poll of at most
// the busy-poll time each time the process would sleep; the kernel stops polling as soon as
// another task wants the CPU.

// DefaultLBBusyPoll is how long, by default, the process polls the load balancers' links before
// it sleeps; MaxLBBusyPoll the longest it may be set to.
const (
	DefaultLBBusyPoll = 50 * time.Microsecond
	MaxLBBusyPoll     = time.Second
)

// busyPollBudget is how many packets one poll may take: NAPI's default weight, the most
// EPIOCSPARAMS allows without CAP_NET_ADMIN.
const busyPollBudget = 64

// epollParams is struct epoll_params.
type epollParams struct {
	BusyPollUsecs  uint32
	BusyPollBudget uint16
	PreferBusyPoll uint8
	_              uint8
}

// errBusyPollUnsupported is what the kernel's refusal of EPIOCSPARAMS/EPIOCGPARAMS means:
// ENOTTY before Linux 6.9, EOPNOTSUPP without CONFIG_NET_RX_BUSY_POLL.
var errBusyPollUnsupported = errors.New("the kernel has no per-instance epoll busy polling (EPIOCSPARAMS: Linux 6.9 or later, CONFIG_NET_RX_BUSY_POLL)")

// busyPollErr names a refusal of the epoll parameters.
func busyPollErr(err error) error {
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) {
		return errBusyPollUnsupported
	}
	return err
}

// CheckLBBusyPoll reports whether d is a busy-poll time the fabric takes (0 is none).
func CheckLBBusyPoll(d time.Duration) error {
	if d != 0 && (d < time.Microsecond || d > MaxLBBusyPoll) {
		return fmt.Errorf("busy-poll time %v: want 0 (none) or from 1µs to %v", d, MaxLBBusyPoll)
	}
	return nil
}

// enableBusyPoll gives every epoll instance of this process (the Go runtime's network poller;
// fakecloud makes no other) a busy-poll time of d, or none when d is 0, and returns how many it
// set. The runtime makes its instance on its first network operation, before any engine starts.
func enableBusyPoll(d time.Duration) (int, error) {
	fds, err := epollFDs()
	if err != nil {
		return 0, err
	}
	if len(fds) == 0 {
		return 0, errors.New("no epoll instance in this process")
	}
	if err := setBusyPollOn(fds, d); err != nil {
		return 0, err
	}
	return len(fds), nil
}

// setBusyPollOn gives epoll instances fds a busy-poll time of d, or none when d is 0. An fd
// that is no longer an epoll instance when it is set (closed, its number reused) is skipped.
func setBusyPollOn(fds []int, d time.Duration) error {
	if err := CheckLBBusyPoll(d); err != nil {
		return err
	}
	p := epollParams{BusyPollUsecs: uint32(d / time.Microsecond), BusyPollBudget: busyPollBudget, PreferBusyPoll: 1}
	if d == 0 {
		p = epollParams{}
	}
	for _, fd := range fds {
		if !isEpoll(fd) {
			continue
		}
		if err := epollSetParams(fd, &p); err != nil {
			if errors.Is(busyPollErr(err), errBusyPollUnsupported) {
				return errBusyPollUnsupported
			}
			if !isEpoll(fd) {
				continue
			}
			return fmt.Errorf("set busy polling of epoll instance %d: %w", fd, err)
		}
	}
	return nil
}

// busyPollSupported reports whether the kernel has per-instance epoll busy polling.
func busyPollSupported() error {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	defer unix.Close(fd)
	if _, err := epollGetParams(fd); err != nil {
		if errors.Is(busyPollErr(err), errBusyPollUnsupported) {
			return errBusyPollUnsupported
		}
		return fmt.Errorf("read busy polling of an epoll instance: %w", err)
	}
	return nil
}

// epollFDs lists this process's epoll instances.
func epollFDs() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("list this process's files: %w", err)
	}
	var fds []int
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && isEpoll(fd) {
			fds = append(fds, fd)
		}
	}
	return fds, nil
}

func isEpoll(fd int) bool {
	t, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	return err == nil && t == "anon_inode:[eventpoll]"
}

func epollSetParams(fd int, p *epollParams) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.EPIOCSPARAMS, uintptr(unsafe.Pointer(p))); errno != 0 {
		return errno
	}
	return nil
}

func epollGetParams(fd int) (epollParams, error) {
	var p epollParams
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.EPIOCGPARAMS, uintptr(unsafe.Pointer(&p))); errno != 0 {
		return p, errno
	}
	return p, nil
}

// linkFeature names an offload that setLinkFeature manages.
type linkFeature struct {
	name     string
	get, set uint32
}

var (
	featureTSO = linkFeature{"tcp-segmentation-offload", unix.ETHTOOL_GTSO, unix.ETHTOOL_STSO}
	featureGRO = linkFeature{"generic-receive-offload", unix.ETHTOOL_GGRO, unix.ETHTOOL_SGRO}
)

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	Cmd  uint32
	Data uint32
}

// ifreqData is struct ifreq with a pointer in its union (ifr_data), padded to its size.
type ifreqData struct {
	Name [unix.IFNAMSIZ]byte
	Data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// setLinkFeature turns an offload of link name in namespace ns on or off, unless it already is,
// and reports whether it changed it.
func setLinkFeature(ns, name string, f linkFeature, on bool) (changed bool, err error) {
	err = withEthtool(ns, func(fd int) error {
		if have, err := readLinkFeature(fd, ns, name, f); err != nil || have == on {
			return err
		}
		v := ethtoolValue{Cmd: f.set}
		if on {
			v.Data = 1
		}
		if err := ethtoolIoctl(fd, name, &v); err != nil {
			return fmt.Errorf("turn %s of %s in %s %s: %w", f.name, name, ns, onOff(on), err)
		}
		// The legacy request does not report a driver's refusal: read it back.
		if have, err := readLinkFeature(fd, ns, name, f); err != nil {
			return err
		} else if have != on {
			return fmt.Errorf("turn %s of %s in %s %s: the driver kept it %s", f.name, name, ns, onOff(on), onOff(!on))
		}
		changed = true
		return nil
	})
	return changed, err
}

// linkFeatureOn reads an offload of link name in namespace ns.
func linkFeatureOn(ns, name string, f linkFeature) (on bool, err error) {
	err = withEthtool(ns, func(fd int) error {
		on, err = readLinkFeature(fd, ns, name, f)
		return err
	})
	return on, err
}

// readLinkFeature reads an offload of link name through fd, a socket of namespace ns.
func readLinkFeature(fd int, ns, name string, f linkFeature) (bool, error) {
	v := ethtoolValue{Cmd: f.get}
	if err := ethtoolIoctl(fd, name, &v); err != nil {
		return false, fmt.Errorf("read %s of %s in %s: %w", f.name, name, ns, err)
	}
	return v.Data != 0, nil
}

// withEthtool runs fn with a socket of namespace ns, which ethtool requests go through.
func withEthtool(ns string, fn func(fd int) error) error {
	fd := -1
	err := netns.Do(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if fd >= 0 {
		defer unix.Close(fd)
	}
	if err != nil {
		return fmt.Errorf("socket in %s: %w", ns, err)
	}
	return fn(fd)
}

func ethtoolIoctl(fd int, name string, v *ethtoolValue) error {
	var ifr ifreqData
	if len(name) >= len(ifr.Name) {
		return fmt.Errorf("link name %q is too long", name)
	}
	copy(ifr.Name[:], name)
	ifr.Data = unsafe.Pointer(v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(v) // reached through ifr.Data only
	if errno != 0 {
		return errno
	}
	return nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
