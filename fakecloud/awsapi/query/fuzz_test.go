package query_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/awsapi/query"
)

// FuzzParse feeds arbitrary bodies and query strings to the parser and reads them the way the
// EC2 and ELBv2 front ends do. It must never panic, every parameter must be either read or
// reported unused, and what it accepted must survive a re-encoding unchanged.
func FuzzParse(f *testing.F) {
	f.Add("Action=DescribeNetworkInterfaces&Version=2016-11-15&Filter.1.Name=attachment.instance-id&Filter.1.Value.1=i-1", "")
	f.Add("Action=CreateTargetGroup&Version=2015-12-01&Tags.member.1.Key=k&Tags.member.1.Value=v", "X-Amz-Expires=60")
	f.Fuzz(func(t *testing.T, body, rawQuery string) {
		p, err := query.Parse(body, rawQuery, func(n string) bool { return strings.HasPrefix(n, "X-Amz-") })
		if err != nil {
			var qe *query.Error
			if !errors.As(err, &qe) {
				t.Fatalf("error %T, want *query.Error", err)
			}
			return
		}
		all := p.Unused()
		r := p.Root()
		r.String("Action")
		r.Int("MaxResults")
		r.Bool("DryRun")
		r.List("NetworkInterfaceId")
		for _, fl := range r.Structs("Filter") {
			fl.String("Name")
			fl.List("Value")
		}
		for _, ts := range r.Structs("TagSpecification") {
			for _, tg := range ts.Structs("Tag") {
				tg.String("Key")
				tg.String("Value")
			}
		}
		r.Members("Names")
		for _, tg := range r.MemberStructs("Tags") {
			tg.String("Key")
		}
		left := p.Unused()
		if len(left) > len(all) {
			t.Fatalf("reading made more parameters unused: %v then %v", all, left)
		}
		// Re-encode what was accepted: it must parse to the same parameters.
		vals := url.Values{}
		for _, k := range all {
			v, _ := p.Root().String(k)
			vals.Set(k, v)
		}
		again, err := query.Parse(vals.Encode(), "", nil)
		if err != nil {
			t.Fatalf("re-encoded parameters refused: %v", err)
		}
		if got := again.Unused(); len(got) != len(all) {
			t.Fatalf("re-encoding changed the parameters: %v, then %v", all, got)
		}
		for _, k := range all {
			a, _ := p.Root().String(k)
			b, _ := again.Root().String(k)
			if a != b {
				t.Fatalf("%s = %q, then %q after re-encoding", k, a, b)
			}
		}
	})
}
