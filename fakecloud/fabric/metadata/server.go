package metadata

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/creds"
)

// Server answers metadata requests from the latest snapshot it was given.
//
// It speaks IMDSv2 as EC2 does, with a hop limit of 1: `PUT /latest/api/token` (with
// X-aws-ec2-metadata-token-ttl-seconds) returns a session token in a reply whose packets carry
// IP TTL 1, so it reaches the node itself but never a pod behind it (the node would have to
// forward it). The instance's fakecloud token is served only with a valid session token of that
// instance (X-aws-ec2-metadata-token); the other documents answer without one, like EC2's
// "optional" mode. Pods therefore cannot read their node's cloud credentials.
//
// Sessions are bounded (Limits): per instance and overall, expired by their TTL, and PUTs are
// rate-limited per instance, so a pod flooding its node's metadata service costs a bounded
// amount of memory and never slows another instance (each instance's sessions have their own
// lock).
type Server struct {
	endpoint string
	idx      atomic.Pointer[index]
	sessions *sessions
}

// HopLimit is the IP TTL of session-token replies.
const HopLimit = 1

// Config configures a Server.
type Config struct {
	// Endpoint is the fakecloud API the metadata tells instances to reach.
	Endpoint string
	// Limits bound the IMDSv2 sessions; zero fields take the defaults.
	Limits Limits
	// Clock is the time sessions expire by (default time.Now).
	Clock func() time.Time
}

// NewServer returns a Server that tells instances to reach the fakecloud API at endpoint, with
// the default limits.
func NewServer(endpoint string) *Server { return New(Config{Endpoint: endpoint}) }

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	s := &Server{endpoint: cfg.Endpoint, sessions: newSessions(cfg.Limits.withDefaults(), cfg.Clock)}
	s.idx.Store(newIndex(&api.Snapshot{}))
	return s
}

// Sessions is how many IMDSv2 sessions the server holds (expired ones not yet swept included).
func (s *Server) Sessions() int { return int(s.sessions.total.Load()) }

type connKey struct{}

// ConnContext is the http.Server hook that lets the handler reach the connection, to set the
// hop limit on session-token replies.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// Update makes the server answer from snap. The fabric calls it after each convergence, so the
// metadata never shows what the network does not deliver yet (like a real cloud, it may lag).
func (s *Server) Update(snap *api.Snapshot) { s.idx.Store(newIndex(snap)) }

const root = "/latest/meta-data/"

// identityPath is the instance identity document, where the AWS SDKs (and so the Amazon VPC
// CNI) read the instance's region from.
const identityPath = "/latest/dynamic/instance-identity/document"

// Region is the region of an availability zone: the zone's name without its letter, as in EC2
// (fakecloud's fc-east-1a is in fc-east-1).
func Region(az string) string {
	if n := len(az); n > 1 && az[n-1] >= 'a' && az[n-1] <= 'z' && az[n-2] >= '0' && az[n-2] <= '9' {
		return az[:n-1]
	}
	return az
}

// identityDocument is EC2's instance identity document (unsigned: fakecloud serves no
// signature or PKCS7 documents) for an instance.
func identityDocument(in *api.Instance) []byte {
	b, _ := json.MarshalIndent(struct {
		AccountID        string `json:"accountId"`
		Architecture     string `json:"architecture"`
		AvailabilityZone string `json:"availabilityZone"`
		ImageID          string `json:"imageId"`
		InstanceID       string `json:"instanceId"`
		InstanceType     string `json:"instanceType"`
		PendingTime      string `json:"pendingTime"`
		PrivateIP        string `json:"privateIp"`
		Region           string `json:"region"`
		Version          string `json:"version"`
	}{creds.AccountID, "x86_64", in.AvailabilityZone, "ami-fakecloud", in.InstanceID, in.InstanceType,
		in.LaunchTime.UTC().Format(time.RFC3339), in.PrivateIPAddress, Region(in.AvailabilityZone), "2017-09-30"}, "", "  ")
	return b
}

// Handler serves the metadata of the instances of one VPC, identified by the caller's address.
func (s *Server) Handler(vpc string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			s.newSession(w, r, vpc)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		in, x, ok := s.caller(vpc, r)
		if !ok {
			http.Error(w, "no instance owns your source address in this VPC", http.StatusForbidden)
			return
		}
		if r.URL.Path == identityPath {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(identityDocument(in))
			return
		}
		path := strings.TrimPrefix(r.URL.Path, root)
		if (path == "fakecloud/token" || creds.MetadataNeedsSession(path)) && !s.sessions.valid(in.InstanceID, r.Header.Get("X-aws-ec2-metadata-token")) {
			http.Error(w, "the instance's credentials need an IMDSv2 session: PUT /latest/api/token first, then send X-aws-ec2-metadata-token", http.StatusUnauthorized)
			return
		}
		body, found := lookup(x, in, s.endpoint, path)
		if !strings.HasPrefix(r.URL.Path, root) || !found {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprint(w, body)
	})
}

// newSession answers IMDSv2's session-token request with a reply limited to HopLimit hops.
func (s *Server) newSession(w http.ResponseWriter, r *http.Request, vpc string) {
	ttl, err := strconv.Atoi(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
	if err != nil || ttl < 1 || ttl > 21600 {
		http.Error(w, "X-aws-ec2-metadata-token-ttl-seconds must be a number of seconds from 1 to 21600", http.StatusBadRequest)
		return
	}
	in, _, ok := s.caller(vpc, r)
	if !ok {
		http.Error(w, "no instance owns your source address in this VPC", http.StatusForbidden)
		return
	}
	if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
		if err := setTTL(c, HopLimit); err != nil {
			http.Error(w, "cannot limit the reply's hops: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	token, err := s.sessions.open(in.InstanceID, time.Duration(ttl)*time.Second)
	if err != nil {
		refuse(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", strconv.Itoa(ttl))
	_, _ = fmt.Fprint(w, token)
}

// setTTL sets the IP TTL of the connection's outgoing packets.
func setTTL(c net.Conn, ttl int) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return fmt.Errorf("connection %T has no socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL, ttl) }); err != nil {
		return err
	}
	return serr
}

func (s *Server) caller(vpc string, r *http.Request) (*api.Instance, *index, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return nil, nil, false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, nil, false
	}
	x := s.idx.Load()
	in, ok := x.owner(vpc, ip.Unmap())
	return in, x, ok
}

// lookup returns the document at path (relative to /latest/meta-data/) for an instance.
func lookup(x *index, in *api.Instance, endpoint, path string) (string, bool) {
	enis := x.enis[in.InstanceID]
	var primary *api.NetworkInterface
	if len(enis) > 0 && enis[0].Attachment.DeviceIndex == 0 {
		primary = enis[0]
	}
	switch path {
	case "":
		return "iam/\ninstance-id\ninstance-type\nlocal-ipv4\nmac\nnetwork/\nplacement/\nfakecloud/", true
	case "instance-id":
		return in.InstanceID, true
	case "instance-type":
		return in.InstanceType, true
	case "local-ipv4":
		return in.PrivateIPAddress, true
	case "mac":
		if primary == nil {
			return "", false
		}
		return strings.ToLower(primary.MacAddress), true
	case "placement/", "placement":
		return "availability-zone\nregion", true
	case "placement/region":
		return Region(in.AvailabilityZone), true
	case "placement/availability-zone":
		return in.AvailabilityZone, true
	case "fakecloud/", "fakecloud":
		return "endpoint\ntoken", true
	case "fakecloud/token":
		return in.Token, in.Token != ""
	case "fakecloud/endpoint":
		return endpoint, true
	case "network/", "network":
		return "interfaces/", true
	case "network/interfaces/", "network/interfaces":
		return "macs/", true
	case "network/interfaces/macs/", "network/interfaces/macs":
		var b strings.Builder
		for i, e := range enis {
			if i > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(strings.ToLower(e.MacAddress) + "/")
		}
		return b.String(), true
	}
	if path == "iam" || strings.HasPrefix(path, "iam/") {
		// EC2's instance-role credentials, derived from the instance's token (awsapi/creds).
		return creds.MetadataDocument(path, in.InstanceID, in.Token, time.Now())
	}
	rest, ok := strings.CutPrefix(path, "network/interfaces/macs/")
	if !ok {
		return "", false
	}
	mac, field, _ := strings.Cut(rest, "/")
	eni := x.eniByMAC(in.InstanceID, mac)
	if eni == nil {
		return "", false
	}
	return interfaceField(x, eni, field)
}

// interfaceField returns one document under network/interfaces/macs/<mac>/.
func interfaceField(x *index, eni *api.NetworkInterface, field string) (string, bool) {
	switch field {
	case "":
		return "device-number\ninterface-id\nipv4-prefix\nlocal-ipv4s\nmac\nsecurity-group-ids\n" +
			"subnet-id\nsubnet-ipv4-cidr-block\nvpc-id\nvpc-ipv4-cidr-blocks", true
	case "device-number":
		return strconv.Itoa(eni.Attachment.DeviceIndex), true
	case "interface-id":
		return eni.NetworkInterfaceID, true
	case "mac":
		return strings.ToLower(eni.MacAddress), true
	case "local-ipv4s":
		return strings.Join(localIPv4s(eni), "\n"), true
	case "ipv4-prefix":
		if len(eni.Ipv4Prefixes) == 0 {
			return "", false // EC2 answers 404 when an interface has no prefix
		}
		ps := make([]string, len(eni.Ipv4Prefixes))
		for i, p := range eni.Ipv4Prefixes {
			ps[i] = p.Ipv4Prefix
		}
		return strings.Join(ps, "\n"), true
	case "security-group-ids":
		return strings.Join(eni.Groups, "\n"), true
	case "subnet-id":
		return eni.SubnetID, true
	case "subnet-ipv4-cidr-block":
		if sn := x.subnets[eni.SubnetID]; sn != nil {
			return sn.CidrBlock, true
		}
		return "", false
	case "vpc-id":
		return eni.VpcID, true
	case "vpc-ipv4-cidr-blocks", "vpc-ipv4-cidr-block":
		if v := x.vpcs[eni.VpcID]; v != nil {
			return v.CidrBlock, true
		}
		return "", false
	}
	return "", false
}

// localIPv4s lists the primary address first, then the secondaries, as EC2 does.
func localIPv4s(eni *api.NetworkInterface) []string {
	out := []string{eni.PrivateIPAddress}
	for _, p := range eni.PrivateIPAddresses {
		if p.PrivateIPAddress != eni.PrivateIPAddress {
			out = append(out, p.PrivateIPAddress)
		}
	}
	return out
}
