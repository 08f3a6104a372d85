package awsapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

const region = "us-east-1"

// world is a running fakecloud with one VPC, one subnet and instances, reached through both
// protocols: the JSON API (Env.Admin) and the AWS front end (the SDK's clients).
type world struct {
	*servertest.Env
	subnet    api.Subnet
	instances []api.Instance
}

func newWorld(t testing.TB, o servertest.Options, instanceType string, count int) *world {
	t.Helper()
	env := servertest.Start(t, o)
	sn, insts := env.Launch(t, "10.0.0.0/16", "10.0.0.0/24", instanceType, count)
	return &world{Env: env, subnet: sn, instances: insts}
}

func staticCreds(k server.AWSKey) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey, SessionToken: k.SessionToken, Source: "fakecloud"}, nil
	})
}

// ec2Client is the SDK's EC2 client against the world's endpoint, signing with k.
func (w *world) ec2Client(k server.AWSKey, opts ...func(*ec2.Options)) *ec2.Client {
	return ec2.New(ec2.Options{Region: region, BaseEndpoint: aws.String(w.URL), Credentials: staticCreds(k)}, opts...)
}

func (w *world) admin() *ec2.Client { return w.ec2Client(servertest.AWSKey) }

// instanceClient signs with instance i's credentials.
func (w *world) instanceClient(t *testing.T, i int) *ec2.Client {
	return w.ec2Client(servertest.InstanceAWSKey(t, w.instances[i]))
}

func noRetry(o *ec2.Options) { o.RetryMaxAttempts = 1 }

// wantAPIError checks that err is an AWS error with code and HTTP status, as the SDK sees it.
func wantAPIError(t *testing.T, err error, code string, status int) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v; want the AWS error %s", err, code)
	}
	if ae.ErrorCode() != code || ae.ErrorMessage() == "" {
		t.Fatalf("error %s (%q); want %s with a message", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	var re *smithyhttp.ResponseError
	if status != 0 && (!errors.As(err, &re) || re.HTTPStatusCode() != status) {
		t.Fatalf("error %s: HTTP status %v; want %d", code, re, status)
	}
}

// result is a call's answer and error, for must(c.Call(...)).of(t).
type result[T any] struct {
	v   T
	err error
}

func must[T any](v T, err error) result[T] { return result[T]{v, err} }

// of fails the test on the call's error, or returns its answer.
func (r result[T]) of(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

// raw is an answer read without an SDK.
type raw struct {
	status int
	header http.Header
	body   string
}

// rawError is EC2's error document.
type rawError struct {
	XMLName   xml.Name `xml:"Response"`
	Code      string   `xml:"Errors>Error>Code"`
	Message   string   `xml:"Errors>Error>Message"`
	RequestID string   `xml:"RequestID"`
}

// timeZero signs at the current time.
var timeZero time.Time

func mustRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// signedRequest is a POST of body to the world's AWS endpoint, signed by k for service now.
func signedRequest(t *testing.T, w *world, k server.AWSKey, service, body, contentType string) *http.Request {
	t.Helper()
	req := mustRequest(t, http.MethodPost, w.URL+"/", body)
	req.Header.Set("Content-Type", contentType)
	sign(t, req, k, service, body, time.Now())
	return req
}

func sign(t *testing.T, req *http.Request, k server.AWSKey, service, body string, at time.Time) {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	c := aws.Credentials{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey, SessionToken: k.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), c, req, hex.EncodeToString(sum[:]), service, region, at); err != nil {
		t.Fatal(err)
	}
}

// send posts a form body to the world's AWS endpoint, signed by k for service at `at` (zero:
// now), or unsigned when k is nil.
func (w *world) send(t *testing.T, k *server.AWSKey, service, body string, at time.Time) raw {
	t.Helper()
	req := mustRequest(t, http.MethodPost, w.URL+"/", body)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if k != nil {
		if at.IsZero() {
			at = time.Now()
		}
		sign(t, req, *k, service, body, at)
	}
	return do(t, req)
}

// presign sends a GET with the parameters in a presigned query string.
func (w *world) presign(tt *testing.T, k server.AWSKey, params url.Values, expires time.Duration, at time.Time) raw {
	tt.Helper()
	params.Set("X-Amz-Expires", strconv.Itoa(int(expires.Seconds())))
	req, err := http.NewRequest(http.MethodGet, w.URL+"/?"+params.Encode(), nil)
	if err != nil {
		tt.Fatal(err)
	}
	c := aws.Credentials{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey, SessionToken: k.SessionToken}
	sum := sha256.Sum256(nil)
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), c, req, hex.EncodeToString(sum[:]), "ec2", region, at)
	if err != nil {
		tt.Fatal(err)
	}
	req2, _ := http.NewRequest(http.MethodGet, signed, nil)
	return do(tt, req2)
}

func do(t *testing.T, req *http.Request) raw {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return raw{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// ec2Error decodes an EC2 error document and checks its code and status.
func (r raw) ec2Error(t *testing.T, code string, status int) rawError {
	t.Helper()
	var e rawError
	if err := xml.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("answer %d %q is not EC2's error document: %v", r.status, r.body, err)
	}
	if e.Code != code || r.status != status || e.Message == "" || e.RequestID == "" || r.header.Get("X-Amzn-Requestid") != e.RequestID {
		t.Fatalf("answer %d %+v; want %s, status %d, a message and the request ID in the body and X-Amzn-RequestId", r.status, e, code, status)
	}
	return e
}
