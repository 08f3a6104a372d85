package sigv4_test

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/awsapi/sigv4"
)

// FuzzParseSignature feeds arbitrary Authorization headers, query strings and dates to the
// signature parser and, when it accepts, to the verifier. Neither may panic; every refusal is a
// *sigv4.Error of a known kind; an accepted signature has the shape the protocol promises.
func FuzzParseSignature(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20250830/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7", "", "20250830T123600Z", "")
	f.Add("", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20250830%2Fus-east-1%2Fec2%2Faws4_request&X-Amz-Date=20250830T123600Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7", "", "UNSIGNED-PAYLOAD")
	f.Fuzz(func(t *testing.T, auth, rawQuery, amzDate, contentSHA string) {
		r := &http.Request{Method: "POST", Host: "127.0.0.1:7474", URL: &url.URL{Path: "/", RawQuery: rawQuery}, Header: http.Header{}}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if amzDate != "" {
			r.Header.Set("X-Amz-Date", amzDate)
		}
		if contentSHA != "" {
			r.Header.Set("X-Amz-Content-Sha256", contentSHA)
		}
		sig, err := sigv4.Parse(r)
		if err != nil {
			known(t, err)
			return
		}
		if len(sig.Signature) != 64 || sig.AccessKeyID == "" || !sort.StringsAreSorted(sig.SignedHeaders) ||
			sort.SearchStrings(sig.SignedHeaders, "host") == len(sig.SignedHeaders) || sig.Scope.Date != sig.Time.Format("20060102") {
			t.Fatalf("accepted a signature of the wrong shape: %+v", sig)
		}
		if err := sigv4.Check(r, []byte("body"), sig, "secret", sig.Time, 0); err != nil {
			known(t, err)
		}
	})
}

func known(t *testing.T, err error) {
	t.Helper()
	var e *sigv4.Error
	if !errors.As(err, &e) || e.Msg == "" {
		t.Fatalf("error %#v is not a *sigv4.Error with a message", err)
	}
	for _, k := range []error{sigv4.ErrMissing, sigv4.ErrMalformed, sigv4.ErrExpired, sigv4.ErrMismatch} {
		if errors.Is(err, k) {
			return
		}
	}
	t.Fatalf("error %v is of no known kind", err)
}
