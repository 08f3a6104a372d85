package state

import (
	"slices"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

func TestSchemaValidatesAndEveryIndexWorks(t *testing.T) {
	sch := schema()
	if err := sch.Validate(); err != nil {
		t.Fatalf("schema invalid: %v", err)
	}
	s := openT(t, Config{})
	txn := s.db.Txn(true)
	defer txn.Abort()
	now := time.Now()
	records := map[string]any{
		tableVpcs:        &vpcRec{ID: "vpc-1", Cidr: "10.0.0.0/16", Created: now},
		tableSubnets:     &subnetRec{ID: "subnet-1", VpcID: "vpc-1", Cidr: "10.0.0.0/24"},
		tableInstances:   &instanceRec{ID: "i-1", SubnetID: "subnet-1", Token: "tok", TokenHash: tokenHash("tok")},
		tableENIs:        &eniRec{ID: "eni-1", SubnetID: "subnet-1", InstanceID: "i-1", AttachmentID: "eni-attach-1", MAC: "02:00:00:00:00:01", Owner: "i-1"},
		tableAddrs:       &addrRec{Key: addrKey("vpc-1", 1), VpcID: "vpc-1", ENI: "eni-1", Start: 1, Size: 1},
		tableIdempotency: &idemRec{Key: "admin|x"},

		tableLoadBalancers: &lbRec{ID: "lb-1", Name: "web", PublicIP: "198.51.100.1", SubnetID: "subnet-1"},
		tableListeners:     &listenerRec{ID: "listener-1", LoadBalancerID: "lb-1", PortKey: "lb-1/TCP/80", TargetGroupID: "tg-1", CertificateIDs: []string{"cert-1"}},
		tableTargetGroups:  &tgRec{ID: "tg-1", Name: "web-tg", VpcID: "vpc-1", ClientCertificateID: "cert-1"},
		tableTargets:       &targetRec{Key: "tg-1/10.0.0.5:80", TargetGroupID: "tg-1"},
		tableRules:         &ruleRec{ID: "rule-1", ListenerID: "listener-1", LoadBalancerID: "lb-1", PriorityKey: "listener-1/10", TargetGroupIDs: []string{"tg-1", "tg-2"}},
		tableCertificates:  &certRec{ID: "cert-1"},

		tableLBTokens: &lbTokenRec{ID: "lbt-1", Token: "lbtok", TokenHash: tokenHash("lbtok"), AccessKeyID: "AKIA1"},
	}
	for table, rec := range records {
		if err := txn.Insert(table, rec); err != nil {
			t.Fatalf("insert into %s: %v", table, err)
		}
	}
	lookups := map[string]map[string]string{
		tableVpcs:        {indexID: "vpc-1"},
		tableSubnets:     {indexID: "subnet-1", indexVpc: "vpc-1"},
		tableInstances:   {indexID: "i-1", indexToken: tokenHash("tok"), indexSubnet: "subnet-1"},
		tableENIs:        {indexID: "eni-1", indexSubnet: "subnet-1", indexInstance: "i-1", indexAttachment: "eni-attach-1", indexMAC: "02:00:00:00:00:01", indexOwner: "i-1"},
		tableAddrs:       {indexID: addrKey("vpc-1", 1), indexENI: "eni-1"},
		tableIdempotency: {indexID: "admin|x"},

		tableLoadBalancers: {indexID: "lb-1", indexName: "web", indexPublicIP: "198.51.100.1", indexSubnet: "subnet-1"},
		tableListeners:     {indexID: "listener-1", indexListenerPort: "lb-1/TCP/80", indexLoadBalancer: "lb-1", indexTargetGroup: "tg-1", indexCertificate: "cert-1"},
		tableTargetGroups:  {indexID: "tg-1", indexName: "web-tg", indexVpc: "vpc-1", indexCertificate: "cert-1"},
		tableTargets:       {indexID: "tg-1/10.0.0.5:80"},
		tableRules:         {indexID: "rule-1", indexListener: "listener-1", indexLoadBalancer: "lb-1", indexRulePriority: "listener-1/10", indexTargetGroup: "tg-2"},
		tableCertificates:  {indexID: "cert-1"},

		tableLBTokens: {indexID: "lbt-1", indexToken: tokenHash("lbtok"), indexAccessKey: "AKIA1"},
	}
	for table, ts := range sch.Tables {
		if len(lookups[table]) != len(ts.Indexes) {
			t.Errorf("table %s has %d indexes but the test looks up %d: cover the new index", table, len(ts.Indexes), len(lookups[table]))
		}
		for index, key := range lookups[table] {
			got, err := txn.First(table, index, key)
			if err != nil || got != records[table] {
				t.Errorf("%s.%s(%q) = %v, %v; want the inserted record", table, index, key, got, err)
			}
		}
	}
	// A listener or rule that uses no target group or certificate must be storable too.
	if err := txn.Insert(tableListeners, &listenerRec{ID: "listener-2", LoadBalancerID: "lb-1", PortKey: "lb-1/HTTP/80"}); err != nil {
		t.Fatalf("listener without groups: %v", err)
	}
	if err := txn.Insert(tableRules, &ruleRec{ID: "rule-2", ListenerID: "listener-2", LoadBalancerID: "lb-1", PriorityKey: "listener-2/1"}); err != nil {
		t.Fatalf("rule without groups: %v", err)
	}
	// A target group without a client certificate must be storable too.
	if err := txn.Insert(tableTargetGroups, &tgRec{ID: "tg-2", Name: "plain", VpcID: "vpc-1"}); err != nil {
		t.Fatalf("target group without a client certificate: %v", err)
	}
	// An interface without an attachment must be storable (AllowMissing indexes).
	if err := txn.Insert(tableENIs, &eniRec{ID: "eni-2", SubnetID: "subnet-1", MAC: "02:00:00:00:00:02"}); err != nil {
		t.Fatalf("unattached interface: %v", err)
	}
}

// TestTargetsOfGroupOnly: a group's targets are found by the prefix of their keys, which must
// not reach the targets of a group whose ID extends the first's.
func TestTargetsOfGroupOnly(t *testing.T) {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		t.Fatal(err)
	}
	txn := db.Txn(true)
	for _, r := range []*targetRec{
		{Key: "tg-1/10.0.0.5:80", TargetGroupID: "tg-1"},
		{Key: "tg-1/10.0.0.6:80", TargetGroupID: "tg-1"},
		{Key: "tg-10/10.0.0.5:80", TargetGroupID: "tg-10"},
	} {
		if err := txn.Insert(tableTargets, r); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, r := range targetsOf(txn, "tg-1") {
		got = append(got, r.Key)
	}
	if want := []string{"tg-1/10.0.0.5:80", "tg-1/10.0.0.6:80"}; !slices.Equal(got, want) {
		t.Errorf("targetsOf(tg-1) = %v, want %v", got, want)
	}
}
