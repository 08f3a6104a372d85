package state

import (
	"fmt"
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// Application load balancer tables.
const (
	tableRules        = "rules"
	tableCertificates = "certificates"
)

// Application load balancer index names.
const (
	indexListener     = "listener"
	indexRulePriority = "priority"
	indexCertificate  = "certificate"
)

// ruleRec is one rule of an application listener. Conditions and Actions are normalised by
// validation (defaults filled in, placeholders dropped) and immutable like every record.
type ruleRec struct {
	ID             string
	ListenerID     string
	LoadBalancerID string
	// PriorityKey is ListenerID/Priority, unique: one rule per priority and listener.
	PriorityKey string
	Priority    int
	Conditions  []api.RuleCondition
	Actions     []api.Action
	// Transforms rewrite what the rule forwards (validated; nil for none).
	Transforms []api.RuleTransform
	// TargetGroupIDs are the groups the actions forward or mirror to (indexed).
	TargetGroupIDs []string
	Created        time.Time
}

// certRec is an imported certificate with its private key. Only the data plane's read path
// (CertificateKeyPair) ever hands the key out.
type certRec struct {
	ID           string
	LeafPEM      string
	ChainPEM     string
	KeyPEM       string
	DomainName   string
	SANs         []string
	Issuer       string
	Serial       string
	KeyAlgorithm string
	NotBefore    time.Time
	NotAfter     time.Time
	Tags         map[string]string
	Created      time.Time
}

func rulePriorityKey(listenerID string, priority int) string {
	return fmt.Sprintf("%s/%d", listenerID, priority)
}

func rulesTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableRules, Indexes: map[string]*memdb.IndexSchema{
		indexID:           idIndex("ID"),
		indexListener:     fieldIndex(indexListener, "ListenerID", false, false),
		indexLoadBalancer: fieldIndex(indexLoadBalancer, "LoadBalancerID", false, false),
		indexRulePriority: fieldIndex(indexRulePriority, "PriorityKey", true, false),
		indexTargetGroup:  refsIndex(indexTargetGroup, ruleTargetGroups),
	}}
}

func certificatesTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableCertificates, Indexes: map[string]*memdb.IndexSchema{
		indexID: idIndex("ID"),
	}}
}

func ruleTargetGroups(obj any) []string { return obj.(*ruleRec).TargetGroupIDs }

// listenerTargetGroups are the groups a listener's default actions use: the one group of a
// network listener (TargetGroupID, as records written before application load balancers
// hold it) and every group of an application listener's actions.
func listenerTargetGroups(obj any) []string {
	l := obj.(*listenerRec)
	if l.TargetGroupID != "" && !slices.Contains(l.TargetGroupIDs, l.TargetGroupID) {
		return append([]string{l.TargetGroupID}, l.TargetGroupIDs...)
	}
	return l.TargetGroupIDs
}

func listenerCertificates(obj any) []string { return obj.(*listenerRec).CertificateIDs }

// refsIndex indexes a record under each of the IDs it refers to (none: not indexed).
func refsIndex(name string, refs func(any) []string) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, AllowMissing: true, Indexer: refsIndexer{refs: refs}}
}

type refsIndexer struct{ refs func(any) []string }

func (ix refsIndexer) FromObject(obj any) (bool, [][]byte, error) {
	ids := ix.refs(obj)
	if len(ids) == 0 {
		return false, nil, nil
	}
	out := make([][]byte, 0, len(ids))
	for _, id := range ids {
		out = append(out, []byte(id+"\x00"))
	}
	return true, out, nil
}

func (refsIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("must provide only a single argument")
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("argument must be a string: %#v", args[0])
	}
	return []byte(s + "\x00"), nil
}
