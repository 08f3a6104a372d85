package metadata

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// Server answers metadata requests from the latest snapshot it was given.
type Server struct {
	endpoint string
	idx      atomic.Pointer[index]
}

// NewServer returns a Server that tells instances to reach the fakecloud API at endpoint.
func NewServer(endpoint string) *Server {
	s := &Server{endpoint: endpoint}
	s.idx.Store(newIndex(&api.Snapshot{}))
	return s
}

// Update makes the server answer from snap. The fabric calls it after each convergence, so the
// metadata never shows what the network does not deliver yet (like a real cloud, it may lag).
func (s *Server) Update(snap *api.Snapshot) { s.idx.Store(newIndex(snap)) }

const root = "/latest/meta-data/"

// Handler serves the metadata of the instances of one VPC, identified by the caller's address.
func (s *Server) Handler(vpc string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			imdsToken(w)
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
		body, found := lookup(x, in, s.endpoint, strings.TrimPrefix(r.URL.Path, root))
		if !strings.HasPrefix(r.URL.Path, root) || !found {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprint(w, body)
	})
}

// imdsToken answers IMDSv2's session-token request, so SDKs that try it first work; the token is
// not required afterwards.
func imdsToken(w http.ResponseWriter) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	w.Header().Set("Content-Type", "text/plain")
	_, _ = fmt.Fprint(w, hex.EncodeToString(b))
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
		return "instance-id\ninstance-type\nlocal-ipv4\nmac\nnetwork/\nplacement/\nfakecloud/", true
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
		return "availability-zone", true
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
