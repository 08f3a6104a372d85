package sigv4_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/flatnet/flatnet/fakecloud/awsapi/sigv4"
)

var (
	signedAt = time.Date(2025, 8, 30, 12, 36, 0, 0, time.UTC)
	creds    = aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	session  = aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "c2VjcmV0LW9mLXRoZS1zZXNzaW9u", SessionToken: "FwoGZXIvYXdzEXAMPLE//token+with/slashes=="}
)

// seen is what the test server received: the request as Go's server parsed it, and its body.
type seen struct {
	r    *http.Request
	body []byte
}

func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// vector is a request the SDK's signer signs; the verifier must compute the same signature.
type vector struct {
	name    string
	method  string
	url     string // host is replaced by the test server's
	body    string
	headers map[string][]string
	creds   aws.Credentials
	service string
	region  string
	presign bool
	// payloadHash signs over this instead of the body's hash (UNSIGNED-PAYLOAD).
	payloadHash string
}

var vectors = []vector{
	{name: "ec2 query post", method: "POST", url: "http://h/", body: "Action=DescribeNetworkInterfaces&Version=2016-11-15&Filter.1.Name=attachment.instance-id&Filter.1.Value.1=i-0123",
		headers: map[string][]string{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}}, creds: creds, service: "ec2", region: "us-east-1"},
	{name: "session token", method: "POST", url: "http://h/", body: "Action=DescribeInstances&Version=2016-11-15",
		headers: map[string][]string{"Content-Type": {"application/x-www-form-urlencoded"}}, creds: session, service: "ec2", region: "us-east-1"},
	{name: "elbv2", method: "POST", url: "http://h/", body: "Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=web",
		headers: map[string][]string{"Content-Type": {"application/x-www-form-urlencoded"}}, creds: creds, service: "elasticloadbalancing", region: "eu-west-3"},
	{name: "get with awkward query", method: "GET", url: "http://h/?Action=DescribeSubnets&b=2&a=1&a=0&a-b=x&a.b=y&sp=a%20b&plus=a%2Bb&slash=a%2Fb&tilde=~&empty=&uni=%C3%A9",
		creds: creds, service: "ec2", region: "us-east-1"},
	{name: "path needing escapes", method: "GET", url: "http://h/some%20path/a:b/%C3%A9/x%2Fy", creds: creds, service: "ec2", region: "us-east-1"},
	{name: "folded and repeated headers", method: "POST", url: "http://h/", body: "x=1",
		headers: map[string][]string{"X-Amz-Meta-Note": {"  several   inner   spaces  "}, "X-Amz-Meta-Multi": {"one", "two"}, "Content-Type": {"text/plain"}},
		creds:   creds, service: "ec2", region: "us-east-1"},
	{name: "empty body post", method: "POST", url: "http://h/", creds: creds, service: "ec2", region: "us-east-1"},
	{name: "unsigned payload", method: "POST", url: "http://h/", body: "Action=DescribeInstances&Version=2016-11-15",
		headers: map[string][]string{"X-Amz-Content-Sha256": {sigv4.UnsignedPayload}}, creds: creds, service: "ec2", region: "us-east-1", payloadHash: sigv4.UnsignedPayload},
	{name: "presigned get", method: "GET", url: "http://h/?Action=DescribeInstances&Version=2016-11-15", creds: creds, service: "ec2", region: "us-east-1", presign: true},
	{name: "presigned with session token", method: "GET", url: "http://h/?Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=a%2Fb", creds: session, service: "ec2", region: "us-east-1", presign: true},
	{name: "presigned unsigned payload", method: "POST", url: "http://h/?Action=DescribeInstances&Version=2016-11-15", body: "ignored=by-signature",
		creds: creds, service: "ec2", region: "us-east-1", presign: true, payloadHash: sigv4.UnsignedPayload},
}

// sign builds v's request and signs it with the SDK's signer at signedAt; it returns the request
// and the signature the SDK computed (the known answer).
func sign(t *testing.T, v vector) (*http.Request, string) {
	t.Helper()
	req, err := http.NewRequest(v.method, v.url, strings.NewReader(v.body))
	if err != nil {
		t.Fatal(err)
	}
	if v.body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, vs := range v.headers {
		for _, x := range vs {
			req.Header.Add(k, x)
		}
	}
	hash := v.payloadHash
	if hash == "" {
		hash = hashOf([]byte(v.body))
	}
	s := v4.NewSigner()
	if v.presign {
		// The caller of PresignHTTP chooses the validity, in the query it signs.
		q := req.URL.Query()
		q.Set(sigv4.QueryExpires, "900")
		req.URL.RawQuery = q.Encode()
		signed, _, err := s.PresignHTTP(context.Background(), v.creds, req, hash, v.service, v.region, signedAt)
		if err != nil {
			t.Fatalf("presign: %v", err)
		}
		u, _ := url.Parse(signed)
		req.URL = u
		return req, u.Query().Get(sigv4.QuerySignature)
	}
	if err := s.SignHTTP(context.Background(), v.creds, req, hash, v.service, v.region, signedAt); err != nil {
		t.Fatalf("sign: %v", err)
	}
	auth := req.Header.Get("Authorization")
	_, sig, _ := strings.Cut(auth, "Signature=")
	return req, sig
}

// exchange signs v for a test server's address (the host is signed), lets tamper change the
// request, sends it and returns what the server received, as Go's HTTP server parsed it (Host,
// Content-Length, escaped path), with the SDK's signature.
func exchange(t *testing.T, v vector, tamper func(*http.Request)) (seen, string) {
	t.Helper()
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r: r, body: body}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	v.url = strings.Replace(v.url, "://h/", "://"+host+"/", 1)
	req, want := sign(t, v)
	if tamper != nil {
		tamper(req)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	resp.Body.Close()
	return <-got, want
}

func TestKnownAnswers(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			s, want := exchange(t, v, nil)
			sig, err := sigv4.Parse(s.r)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if sig.Signature != want || sig.AccessKeyID != v.creds.AccessKeyID || sig.Presigned != v.presign ||
				sig.Scope != (sigv4.Scope{Date: "20250830", Region: v.region, Service: v.service}) ||
				!sig.Time.Equal(signedAt) || sig.SecurityToken != v.creds.SessionToken {
				t.Fatalf("Parse = %+v; want the SDK's signature %s for %s in %s/%s", sig, want, v.creds.AccessKeyID, v.region, v.service)
			}
			if err := sigv4.Check(s.r, s.body, sig, v.creds.SecretAccessKey, signedAt.Add(time.Minute), 0); err != nil {
				t.Fatalf("Check: %v (the SDK's signature is %s)", err, want)
			}
		})
	}
}

// TestPublishedExample checks the derivation against the example of AWS's Signature Version 4
// documentation (IAM ListUsers, 2015-08-30), whose signature the SDK also reproduces.
func TestPublishedExample(t *testing.T) {
	canonical := strings.Join([]string{
		"GET", "/", "Action=ListUsers&Version=2010-05-08",
		"content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n",
		"content-type;host;x-amz-date",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	}, "\n")
	scope := sigv4.Scope{Date: "20150830", Region: "us-east-1", Service: "iam"}
	at := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	got := sigv4.Sign(creds.SecretAccessKey, scope, at, canonical)

	req, _ := http.NewRequest("GET", "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08", nil)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hashOf(nil), "iam", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	_, want, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	if got != want || got != "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7" {
		t.Fatalf("signature %s; the SDK computes %s, the documentation shows 5d672d79...", got, want)
	}
}

func TestRefusals(t *testing.T) {
	post := vectors[0]
	presigned := vectors[8]
	cases := []struct {
		name   string
		v      vector
		tamper func(*http.Request)
		secret string
		now    time.Time
		kind   error
	}{
		{name: "wrong secret", v: post, secret: "not-the-secret", kind: sigv4.ErrMismatch},
		{name: "body changed", v: post, tamper: func(r *http.Request) { setBody(r, "Action=DeleteNetworkInterface&Version=2016-11-15") }, kind: sigv4.ErrMismatch},
		{name: "method changed", v: presigned, tamper: func(r *http.Request) { r.Method = "DELETE" }, kind: sigv4.ErrMismatch},
		{name: "path changed", v: post, tamper: func(r *http.Request) { r.URL.Path = "/other" }, kind: sigv4.ErrMismatch},
		{name: "query added", v: post, tamper: func(r *http.Request) { r.URL.RawQuery = "x=1" }, kind: sigv4.ErrMismatch},
		{name: "presigned query changed", v: presigned, tamper: func(r *http.Request) {
			r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "DescribeInstances", "TerminateInstances", 1)
		}, kind: sigv4.ErrMismatch},
		{name: "signed header changed", v: post, tamper: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, kind: sigv4.ErrMismatch},
		{name: "signed header removed", v: post, tamper: func(r *http.Request) { r.Header.Del("Content-Type") }, kind: sigv4.ErrMismatch},
		{name: "date changed", v: post, tamper: func(r *http.Request) { r.Header.Set("X-Amz-Date", "20250830T123700Z") }, kind: sigv4.ErrMismatch},
		{name: "scope region changed", v: post, tamper: func(r *http.Request) { replaceAuth(r, "/us-east-1/", "/us-west-2/") }, kind: sigv4.ErrMismatch},
		{name: "content hash not the body's", v: post, tamper: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", hashOf([]byte("x"))) }, kind: sigv4.ErrMismatch},
		{name: "too old", v: post, now: signedAt.Add(16 * time.Minute), kind: sigv4.ErrExpired},
		{name: "too far ahead", v: post, now: signedAt.Add(-16 * time.Minute), kind: sigv4.ErrExpired},
		{name: "presigned expired", v: presigned, now: signedAt.Add(16 * time.Minute), kind: sigv4.ErrExpired},
		{name: "no signature", v: post, tamper: func(r *http.Request) { r.Header.Del("Authorization") }, kind: sigv4.ErrMissing},
		{name: "sigv2-style header", v: post, tamper: func(r *http.Request) { r.Header.Set("Authorization", "AWS AKID:c2ln") }, kind: sigv4.ErrMalformed},
		{name: "other algorithm", v: post, tamper: func(r *http.Request) { replaceAuth(r, "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256") }, kind: sigv4.ErrMalformed},
		{name: "scope date not the request's", v: post, tamper: func(r *http.Request) { replaceAuth(r, "/20250830/", "/20250831/") }, kind: sigv4.ErrMalformed},
		{name: "host unsigned", v: post, tamper: func(r *http.Request) {
			replaceAuth(r, "SignedHeaders=content-length;content-type;host;x-amz-date", "SignedHeaders=content-length;content-type;x-amz-date")
		}, kind: sigv4.ErrMalformed},
		{name: "signed headers unsorted", v: post, tamper: func(r *http.Request) { replaceAuth(r, "content-type;host", "host;content-type") }, kind: sigv4.ErrMalformed},
		{name: "signature not hex", v: post, tamper: func(r *http.Request) { replaceAuth(r, "Signature=", "Signature=zz") }, kind: sigv4.ErrMalformed},
		{name: "no timestamp", v: post, tamper: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, kind: sigv4.ErrMalformed},
		{name: "presigned without expiry", v: presigned, tamper: func(r *http.Request) { dropQuery(r, "X-Amz-Expires") }, kind: sigv4.ErrMalformed},
		{name: "signed twice", v: presigned, tamper: func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256 x") }, kind: sigv4.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := exchange(t, c.v, c.tamper)
			secret := c.v.creds.SecretAccessKey
			if c.secret != "" {
				secret = c.secret
			}
			now := c.now
			if now.IsZero() {
				now = signedAt
			}
			sig, err := sigv4.Parse(s.r)
			if err == nil {
				err = sigv4.Check(s.r, s.body, sig, secret, now, 0)
			}
			if !errors.Is(err, c.kind) {
				t.Fatalf("err = %v; want %v", err, c.kind)
			}
			var e *sigv4.Error
			if !errors.As(err, &e) || e.Msg == "" {
				t.Fatalf("err = %#v; want a *sigv4.Error saying what is wrong", err)
			}
		})
	}
}

// TestUnsignedHeadersMayChange: a proxy may add or change headers the client did not sign.
func TestUnsignedHeadersMayChange(t *testing.T) {
	s, _ := exchange(t, vectors[0], func(r *http.Request) {
		r.Header.Set("User-Agent", "changed")
		r.Header.Set("X-Forwarded-For", "10.1.2.3")
	})
	sig, err := sigv4.Parse(s.r)
	if err == nil {
		err = sigv4.Check(s.r, s.body, sig, creds.SecretAccessKey, signedAt, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func setBody(r *http.Request, body string) {
	r.Body = io.NopCloser(bytes.NewReader([]byte(body)))
	r.ContentLength = int64(len(body))
	r.GetBody = nil
}

func replaceAuth(r *http.Request, old, repl string) {
	r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), old, repl, 1))
}

func dropQuery(r *http.Request, key string) {
	q := r.URL.Query()
	q.Del(key)
	r.URL.RawQuery = q.Encode()
}
