package state

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Table names.
const (
	tableVpcs        = "vpcs"
	tableSubnets     = "subnets"
	tableInstances   = "instances"
	tableENIs        = "enis"
	tableAddrs       = "addrs"
	tableIdempotency = "idempotency"
)

// Index names.
const (
	indexID         = "id"
	indexVpc        = "vpc"
	indexSubnet     = "subnet"
	indexToken      = "token"
	indexInstance   = "instance"
	indexAttachment = "attachment"
	indexMAC        = "mac"
	indexENI        = "eni"
	indexOwner      = "owner"
)

// Records are what memdb holds. They are immutable once inserted: copy, modify, insert again.

type vpcRec struct {
	ID      string
	Cidr    string
	Tags    map[string]string
	Created time.Time
}

type subnetRec struct {
	ID      string
	VpcID   string
	Cidr    string
	AZ      string
	Tags    map[string]string
	Created time.Time
}

type instanceRec struct {
	ID       string
	Type     string
	SubnetID string
	VpcID    string
	AZ       string
	Token    string
	// TokenHash indexes the token, so that finding an instance by token never walks the index
	// with the secret itself (a lookup's timing could leak a prefix of it).
	TokenHash      string
	SecurityGroups []string
	Tags           map[string]string
	Launched       time.Time
}

type eniRec struct {
	ID              string
	SubnetID        string
	VpcID           string
	AZ              string
	Description     string
	MAC             string
	Groups          []string
	SourceDestCheck bool
	Tags            map[string]string
	Created         time.Time
	// Owner is the instance that created the interface through its own token, if any.
	Owner string
	// The attachment, when AttachmentID is set.
	AttachmentID        string
	InstanceID          string
	DeviceIndex         int
	AttachStatus        string
	DeleteOnTermination bool
	// AttachDue is when a transitional attach status (attaching, detaching) completes.
	AttachDue time.Time
}

// addrRec is one allocation in a VPC's address space: a single address (Size 1) or a /28 prefix
// (Size 16). Its key orders allocations by address within a VPC, and the primary-key uniqueness,
// together with the overlap check every insert makes inside the single write transaction, is what
// makes a double assignment impossible.
type addrRec struct {
	Key      string // addrKey(VpcID, Start)
	VpcID    string
	SubnetID string
	ENI      string
	Start    uint32
	Size     uint32
	Primary  bool
	Assigned time.Time
}

type idemRec struct {
	Key      string // principal + "|" + client token
	Action   string
	Hash     string
	Response []byte
	Created  time.Time
}

func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableVpcs:        vpcsTable(),
		tableSubnets:     subnetsTable(),
		tableInstances:   instancesTable(),
		tableENIs:        enisTable(),
		tableAddrs:       addrsTable(),
		tableIdempotency: idempotencyTable(),

		tableLoadBalancers: loadBalancersTable(),
		tableListeners:     listenersTable(),
		tableTargetGroups:  targetGroupsTable(),
		tableTargets:       targetsTable(),
		tableRules:         rulesTable(),
		tableCertificates:  certificatesTable(),

		tableLBTokens: lbTokensTable(),
	}}
}

func idIndex(field string) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: field}}
}

func fieldIndex(name, field string, unique, allowMissing bool) *memdb.IndexSchema {
	return &memdb.IndexSchema{
		Name: name, Unique: unique, AllowMissing: allowMissing,
		Indexer: &memdb.StringFieldIndex{Field: field},
	}
}

func vpcsTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableVpcs, Indexes: map[string]*memdb.IndexSchema{
		indexID: idIndex("ID"),
	}}
}

func subnetsTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableSubnets, Indexes: map[string]*memdb.IndexSchema{
		indexID:  idIndex("ID"),
		indexVpc: fieldIndex(indexVpc, "VpcID", false, false),
	}}
}

func instancesTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableInstances, Indexes: map[string]*memdb.IndexSchema{
		indexID:     idIndex("ID"),
		indexToken:  fieldIndex(indexToken, "TokenHash", true, false),
		indexSubnet: fieldIndex(indexSubnet, "SubnetID", false, false),
	}}
}

func enisTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableENIs, Indexes: map[string]*memdb.IndexSchema{
		indexID:         idIndex("ID"),
		indexSubnet:     fieldIndex(indexSubnet, "SubnetID", false, false),
		indexInstance:   fieldIndex(indexInstance, "InstanceID", false, true),
		indexAttachment: fieldIndex(indexAttachment, "AttachmentID", true, true),
		indexMAC:        fieldIndex(indexMAC, "MAC", true, false),
		indexOwner:      fieldIndex(indexOwner, "Owner", false, true),
	}}
}

func addrsTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableAddrs, Indexes: map[string]*memdb.IndexSchema{
		indexID:  idIndex("Key"),
		indexENI: fieldIndex(indexENI, "ENI", false, false),
	}}
}

func idempotencyTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableIdempotency, Indexes: map[string]*memdb.IndexSchema{
		indexID: idIndex("Key"),
	}}
}
