package aws

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/providertest"
)

// TestTaggingBatches: TagResources and UntagResources name at most maxTagARNs ARNs in one ELBv2
// call and each certificate in an ACM call of its own, an ID given twice once; every resource
// ends up tagged, then untagged.
func TestTaggingBatches(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "m5.large", 1)
	d := w.lb(t, time.Second)
	calls := map[string]int{}
	observe := d.observe
	d.observe = func(op string, took time.Duration, err error) {
		calls[op]++
		observe(op, took, err)
	}
	owner := map[string]string{"flatnet.io/cluster": "c1"}
	hc := providers.HealthCheck{Protocol: "TCP", Interval: 5 * time.Second, Timeout: 5 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 2}
	var ids []string
	for i := range maxTagARNs + 1 {
		tg, err := d.CreateTargetGroup(ctx, providers.TargetGroupSpec{Name: "tg-" + strconv.Itoa(i), Protocol: "TCP", Port: 80, HealthCheck: hc, Tags: owner})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tg.ID)
	}
	certPEM, keyPEM := providertest.SelfSigned(t, "a.example.com")
	cert, err := d.ImportCertificate(ctx, providers.CertificateSpec{CertificatePEM: certPEM, PrivateKeyPEM: keyPEM, Tags: owner})
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, cert.ID, ids[0], cert.ID)
	prod := map[string]string{"env": "prod"}
	count := func() (groups, certs int) {
		t.Helper()
		tgs, err := d.ListTargetGroups(ctx, prod)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := d.ListCertificates(ctx, prod)
		if err != nil {
			t.Fatal(err)
		}
		return len(tgs), len(cs)
	}

	clear(calls)
	if err := d.TagResources(ctx, ids, prod); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"AddTags": 2, "AddTagsToCertificate": 1}, calls); diff != "" {
		t.Errorf("calls of TagResources (-want +got):\n%s", diff)
	}
	if groups, certs := count(); groups != maxTagARNs+1 || certs != 1 {
		t.Errorf("tagged: %d groups and %d certificates; want %d and 1", groups, certs, maxTagARNs+1)
	}
	clear(calls)
	if err := d.UntagResources(ctx, ids, []string{"env"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"RemoveTags": 2, "RemoveTagsFromCertificate": 1}, calls); diff != "" {
		t.Errorf("calls of UntagResources (-want +got):\n%s", diff)
	}
	if groups, certs := count(); groups != 0 || certs != 0 {
		t.Errorf("untagged: %d groups and %d certificates still tagged", groups, certs)
	}
}
