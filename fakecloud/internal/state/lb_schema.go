package state

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// Load balancer tables.
const (
	tableLoadBalancers = "loadbalancers"
	tableListeners     = "listeners"
	tableTargetGroups  = "targetgroups"
	tableTargets       = "targets"
)

// Load balancer index names.
const (
	indexName         = "name"
	indexPublicIP     = "publicip"
	indexLoadBalancer = "loadbalancer"
	indexTargetGroup  = "targetgroup"
	indexListenerPort = "port"
)

type lbRec struct {
	ID       string
	Name     string
	Scheme   string
	Type     string
	VpcID    string
	SubnetID string
	AZ       string
	// PrivateIP is held in the addrs table under the load balancer's ID, like the address of
	// a requester-managed interface.
	PrivateIP string
	// PublicIP is unique by index among load balancers (empty for internal ones).
	PublicIP     string
	SourceRanges []string
	AccessLogs   bool // application load balancers only
	Tags         map[string]string
	Created      time.Time
	// State and StateReason are what the data plane last reported (api.LoadBalancerState*);
	// an empty State, from a state file written before states existed, reads as active.
	State       string
	StateReason string
}

type listenerRec struct {
	ID             string
	LoadBalancerID string
	// PortKey is LoadBalancerID/Protocol/Port, unique: one listener per port and protocol.
	PortKey  string
	Protocol string
	Port     int
	// TargetGroupID is a network listener's one group.
	TargetGroupID string
	// Actions are an application listener's default actions (normalised), TargetGroupIDs
	// the groups they use, SSLPolicy and CertificateIDs (the default first) an HTTPS one's.
	Actions        []api.Action
	TargetGroupIDs []string
	SSLPolicy      string
	CertificateIDs []string
	// HostnameScopes are an HTTPS listener's (lowercase, in the order given).
	HostnameScopes []string
	// MutualAuthentication is an HTTPS listener's (validated; nil: no client certificate is
	// asked for).
	MutualAuthentication *api.MutualAuthentication
	Created              time.Time
}

type tgRec struct {
	ID       string
	Name     string
	Protocol string
	// ProtocolVersion is HTTP1, HTTP2 or GRPC for HTTP/HTTPS groups, empty for the others.
	ProtocolVersion string
	Port            int
	VpcID           string
	HealthCheck     api.HealthCheck // complete: defaults filled in
	// DeregistrationDelay is in seconds.
	DeregistrationDelay int
	// TLSVerification is an HTTPS or TLS group's (validated; nil: targets not verified).
	TLSVerification *api.TLSVerification
	// ClientCertificateID is the imported certificate an HTTPS or TLS group presents to its targets
	// ("": none); indexed, so the certificate cannot be deleted while the group names it.
	ClientCertificateID string
	Tags                map[string]string
	Created             time.Time
}

// targetRec is one registered (IP, port) of a target group with the last health verdict the
// data plane reported (initial until then). A draining target has a DrainDeadline, after
// which a timer removes it; the deadline is persisted, so a restart re-arms the timer.
type targetRec struct {
	Key           string // api.TargetID(TargetGroupID, IP, Port)
	TargetGroupID string
	IP            string
	Port          int
	State         string
	Reason        string
	Description   string
	DrainDeadline time.Time
	Registered    time.Time
}

func loadBalancersTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableLoadBalancers, Indexes: map[string]*memdb.IndexSchema{
		indexID:       idIndex("ID"),
		indexName:     fieldIndex(indexName, "Name", true, false),
		indexPublicIP: fieldIndex(indexPublicIP, "PublicIP", true, true),
		indexSubnet:   fieldIndex(indexSubnet, "SubnetID", false, false),
	}}
}

func listenersTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableListeners, Indexes: map[string]*memdb.IndexSchema{
		indexID:           idIndex("ID"),
		indexListenerPort: fieldIndex(indexListenerPort, "PortKey", true, false),
		indexLoadBalancer: fieldIndex(indexLoadBalancer, "LoadBalancerID", false, false),
		indexTargetGroup:  refsIndex(indexTargetGroup, listenerTargetGroups),
		indexCertificate:  refsIndex(indexCertificate, listenerCertificates),
	}}
}

func targetGroupsTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableTargetGroups, Indexes: map[string]*memdb.IndexSchema{
		indexID:          idIndex("ID"),
		indexName:        fieldIndex(indexName, "Name", true, false),
		indexVpc:         fieldIndex(indexVpc, "VpcID", false, false),
		indexCertificate: fieldIndex(indexCertificate, "ClientCertificateID", false, true),
	}}
}

// targetsTable has its primary index only: a target's key starts with its group's ID
// (api.TargetID), so targetsOf finds a group's targets by prefix, and registering or removing a
// target writes one radix tree, not two (half the cost of a 1,000-target transaction).
func targetsTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableTargets, Indexes: map[string]*memdb.IndexSchema{
		indexID: idIndex("Key"),
	}}
}

// targetsOf lists the targets of group tgID in key order.
func targetsOf(txn *memdb.Txn, tgID string) []*targetRec {
	return listBy[targetRec](txn, tableTargets, indexID+"_prefix", tgID+"/")
}
