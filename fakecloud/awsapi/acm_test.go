package awsapi_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

func (w *world) acmClient(k server.AWSKey) *acm.Client {
	return acm.New(acm.Options{Region: region, BaseEndpoint: aws.String(w.URL), Credentials: staticCreds(k), RetryMaxAttempts: 1})
}

// TestACMCertificates drives fakecloud's ACM front end with the SDK's ACM client: certificates
// imported with tags, listed (ECDSA ones only when asked for, as ACM), their tags read, one
// served by an HTTPS listener named by the ARN ImportCertificate answered, deleted only once
// no listener serves it, and deleted again (ResourceNotFoundException).
func TestACMCertificates(t *testing.T) {
	a := newALB(t)
	ctx := context.Background()
	c := a.w.acmClient(servertest.AWSKey)
	var arns []string
	for _, name := range []string{"a.example.com", "b.example.com"} {
		certPEM, keyPEM := selfSignedPEM(t, name)
		out := must(c.ImportCertificate(ctx, &acm.ImportCertificateInput{Certificate: []byte(certPEM), PrivateKey: []byte(keyPEM),
			Tags: []acmtypes.Tag{{Key: aws.String("owner"), Value: aws.String(name)}}})).of(t)
		if !strings.HasPrefix(aws.ToString(out.CertificateArn), "arn:aws:acm:us-east-1:000000000000:certificate/cert-") {
			t.Fatalf("ARN %q", aws.ToString(out.CertificateArn))
		}
		arns = append(arns, aws.ToString(out.CertificateArn))
	}
	// The JSON API sees them: one store.
	if d := must(a.w.Admin.DescribeCertificates(ctx, &api.DescribeCertificatesRequest{})).of(t); len(d.Certificates) != 2 {
		t.Fatalf("the JSON API lists %d certificates", len(d.Certificates))
	}
	if l := must(c.ListCertificates(ctx, &acm.ListCertificatesInput{})).of(t); len(l.CertificateSummaryList) != 0 {
		t.Errorf("ACM lists only RSA keys unless asked: %d listed", len(l.CertificateSummaryList))
	}
	list := func() map[string]bool {
		out := map[string]bool{}
		in := &acm.ListCertificatesInput{Includes: &acmtypes.Filters{KeyTypes: []acmtypes.KeyAlgorithm{acmtypes.KeyAlgorithmEcPrime256v1}}, MaxItems: aws.Int32(1)}
		for p := acm.NewListCertificatesPaginator(c, in); p.HasMorePages(); {
			for _, s := range must(p.NextPage(ctx)).of(t).CertificateSummaryList {
				if s.Type != acmtypes.CertificateTypeImported || s.Status != acmtypes.CertificateStatusIssued || s.NotAfter == nil || len(s.SubjectAlternativeNameSummaries) != 1 {
					t.Errorf("summary %+v", s)
				}
				out[aws.ToString(s.CertificateArn)] = aws.ToBool(s.InUse)
			}
		}
		return out
	}
	if d := cmp.Diff(map[string]bool{arns[0]: false, arns[1]: false}, list()); d != "" {
		t.Fatalf("listed (-want +got):\n%s", d)
	}
	tags := must(c.ListTagsForCertificate(ctx, &acm.ListTagsForCertificateInput{CertificateArn: aws.String(arns[1])})).of(t).Tags
	if len(tags) != 1 || aws.ToString(tags[0].Key) != "owner" || aws.ToString(tags[0].Value) != "b.example.com" {
		t.Errorf("tags %+v", tags)
	}

	must(a.c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(a.lb), Protocol: types.ProtocolEnumHttps, Port: aws.Int32(443),
		Certificates: []types.Certificate{{CertificateArn: aws.String(arns[0])}}, DefaultActions: forwardTo(a.blue)})).of(t)
	if d := cmp.Diff(map[string]bool{arns[0]: true, arns[1]: false}, list()); d != "" {
		t.Fatalf("InUse (-want +got):\n%s", d)
	}
	_, err := c.DeleteCertificate(ctx, &acm.DeleteCertificateInput{CertificateArn: aws.String(arns[0])})
	wantAPIError(t, err, "ResourceInUseException", http.StatusBadRequest)
	must(c.DeleteCertificate(ctx, &acm.DeleteCertificateInput{CertificateArn: aws.String(arns[1])})).of(t)
	_, err = c.DeleteCertificate(ctx, &acm.DeleteCertificateInput{CertificateArn: aws.String(arns[1])})
	wantAPIError(t, err, "ResourceNotFoundException", http.StatusBadRequest)
}

// TestACMErrors: bad input, foreign ARNs, unserved operations, instance credentials, a bad
// signature and an injected throttle, each in ACM's terms.
func TestACMErrors(t *testing.T) {
	w := newWorld(t, servertest.Options{FaultSeed: 1}, "m5.large", 1)
	ctx := context.Background()
	c := w.acmClient(servertest.AWSKey)
	certPEM, keyPEM := selfSignedPEM(t, "a.example.com")
	otherPEM, _ := selfSignedPEM(t, "b.example.com")

	_, err := c.ImportCertificate(ctx, &acm.ImportCertificateInput{Certificate: []byte(otherPEM), PrivateKey: []byte(keyPEM)})
	wantAPIError(t, err, "ValidationException", http.StatusBadRequest)
	_, err = c.ImportCertificate(ctx, &acm.ImportCertificateInput{Certificate: []byte(certPEM), PrivateKey: []byte(keyPEM),
		CertificateArn: aws.String("arn:aws:acm:us-east-1:000000000000:certificate/cert-0123456789abcdef0")})
	wantAPIError(t, err, "ValidationException", http.StatusBadRequest)
	_, err = c.DeleteCertificate(ctx, &acm.DeleteCertificateInput{CertificateArn: aws.String("arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012")})
	wantAPIError(t, err, "InvalidArnException", http.StatusBadRequest)
	_, err = c.ListTagsForCertificate(ctx, &acm.ListTagsForCertificateInput{CertificateArn: aws.String("arn:aws:acm:us-east-1:000000000000:certificate/cert-0123456789abcdef0")})
	wantAPIError(t, err, "ResourceNotFoundException", http.StatusBadRequest)
	_, err = c.GetCertificate(ctx, &acm.GetCertificateInput{CertificateArn: aws.String("arn:aws:acm:us-east-1:000000000000:certificate/cert-0123456789abcdef0")})
	wantAPIError(t, err, "UnknownOperationException", http.StatusBadRequest)
	_, err = c.ListCertificates(ctx, &acm.ListCertificatesInput{SortBy: acmtypes.SortByCreatedAt, SortOrder: acmtypes.SortOrderAscending})
	wantAPIError(t, err, "ValidationException", http.StatusBadRequest)

	_, err = w.acmClient(servertest.InstanceAWSKey(t, w.instances[0])).ListCertificates(ctx, &acm.ListCertificatesInput{})
	wantAPIError(t, err, "AccessDeniedException", http.StatusBadRequest)
	bad := servertest.AWSKey
	bad.SecretAccessKey = "not-the-secret"
	_, err = w.acmClient(bad).ListCertificates(ctx, &acm.ListCertificatesInput{})
	wantAPIError(t, err, "InvalidSignatureException", http.StatusBadRequest)
	bad = servertest.AWSKey
	bad.AccessKeyID = "AKIANOTAKEYFAKECLOUD"
	_, err = w.acmClient(bad).ListCertificates(ctx, &acm.ListCertificatesInput{})
	wantAPIError(t, err, "UnrecognizedClientException", http.StatusBadRequest)

	setFault(t, w, api.Fault{Action: api.ActionDescribeCertificates, ErrorRate: 1, ErrorCode: api.CodeRequestLimitExceeded})
	_, err = c.ListCertificates(ctx, &acm.ListCertificatesInput{})
	wantAPIError(t, err, "ThrottlingException", http.StatusBadRequest)
	if !retry.NewStandard().IsErrorRetryable(err) {
		t.Fatalf("the SDK's retryer does not retry %v", err)
	}
}

// acmTagList is ACM's tags of key-value pairs.
func acmTagList(kv ...string) []acmtypes.Tag {
	var out []acmtypes.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, acmtypes.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

// TestACMTags: AddTagsToCertificate adds and overwrites tags, seen by the JSON API too (one
// store); RemoveTagsFromCertificate removes a key given alone whatever its value, one given
// with a value only when the value matches, and a key the certificate lacks is no error. A
// reserved key, too many tags, a certificate that does not exist and a foreign ARN fail in
// ACM's terms and change nothing.
func TestACMTags(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 1)
	ctx := context.Background()
	c := w.acmClient(servertest.AWSKey)
	certPEM, keyPEM := selfSignedPEM(t, "a.example.com")
	arn := aws.ToString(must(c.ImportCertificate(ctx, &acm.ImportCertificateInput{Certificate: []byte(certPEM), PrivateKey: []byte(keyPEM),
		Tags: acmTagList("owner", "a", "team", "net")})).of(t).CertificateArn)
	tags := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, tg := range must(c.ListTagsForCertificate(ctx, &acm.ListTagsForCertificateInput{CertificateArn: aws.String(arn)})).of(t).Tags {
			out[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		return out
	}

	must(c.AddTagsToCertificate(ctx, &acm.AddTagsToCertificateInput{CertificateArn: aws.String(arn), Tags: acmTagList("owner", "b", "env", "prod")})).of(t)
	want := map[string]string{"owner": "b", "team": "net", "env": "prod"}
	if d := cmp.Diff(want, tags()); d != "" {
		t.Fatalf("after AddTagsToCertificate (-want +got):\n%s", d)
	}
	jsonTags := must(w.Admin.DescribeTags(ctx, &api.DescribeTagsRequest{ResourceIDs: []string{lastSegment(arn)}})).of(t)
	if len(jsonTags.TagDescriptions) != 1 || len(jsonTags.TagDescriptions[0].Tags) != 3 {
		t.Errorf("the JSON API sees the certificate's tags as %+v", jsonTags)
	}
	must(c.RemoveTagsFromCertificate(ctx, &acm.RemoveTagsFromCertificateInput{CertificateArn: aws.String(arn), Tags: []acmtypes.Tag{
		{Key: aws.String("env")}, {Key: aws.String("owner"), Value: aws.String("a")}, {Key: aws.String("missing")},
	}})).of(t)
	want = map[string]string{"owner": "b", "team": "net"}
	if d := cmp.Diff(want, tags()); d != "" {
		t.Fatalf("after removing env, owner=a and missing (-want +got):\n%s", d)
	}
	must(c.RemoveTagsFromCertificate(ctx, &acm.RemoveTagsFromCertificateInput{CertificateArn: aws.String(arn), Tags: acmTagList("owner", "b")})).of(t)
	want = map[string]string{"team": "net"}
	if d := cmp.Diff(want, tags()); d != "" {
		t.Fatalf("after removing owner=b (-want +got):\n%s", d)
	}

	var many []string
	for i := range 50 { // with team, 51: one over the limit
		many = append(many, "k"+strconv.Itoa(i), "v")
	}
	unknown := aws.String("arn:aws:acm:us-east-1:000000000000:certificate/cert-0123456789abcdef0")
	for _, tc := range []struct {
		name string
		err  error
		code string
	}{
		{"a reserved key", second(c.AddTagsToCertificate(ctx, &acm.AddTagsToCertificateInput{CertificateArn: aws.String(arn), Tags: acmTagList("aws:x", "v")})), "InvalidTagException"},
		{"too many tags", second(c.AddTagsToCertificate(ctx, &acm.AddTagsToCertificateInput{CertificateArn: aws.String(arn), Tags: acmTagList(many...)})), "TooManyTagsException"},
		{"add to an unknown certificate", second(c.AddTagsToCertificate(ctx, &acm.AddTagsToCertificateInput{CertificateArn: unknown, Tags: acmTagList("a", "b")})), "ResourceNotFoundException"},
		{"remove from an unknown certificate", second(c.RemoveTagsFromCertificate(ctx, &acm.RemoveTagsFromCertificateInput{CertificateArn: unknown, Tags: acmTagList("a", "b")})), "ResourceNotFoundException"},
		{"remove a key from an unknown certificate", second(c.RemoveTagsFromCertificate(ctx, &acm.RemoveTagsFromCertificateInput{CertificateArn: unknown, Tags: []acmtypes.Tag{{Key: aws.String("a")}}})), "ResourceNotFoundException"},
		{"a foreign ARN", second(c.AddTagsToCertificate(ctx, &acm.AddTagsToCertificateInput{
			CertificateArn: aws.String("arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"), Tags: acmTagList("a", "b")})), "InvalidArnException"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantAPIError(t, tc.err, tc.code, http.StatusBadRequest) })
	}
	if d := cmp.Diff(want, tags()); d != "" {
		t.Errorf("after the refusals (-want +got):\n%s", d)
	}
}

// second is the error of a call's two results.
func second[T any](_ T, err error) error { return err }
