package query_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/awsapi/query"
)

func TestRead(t *testing.T) {
	body := "Action=DescribeNetworkInterfaces&Version=2016-11-15&NetworkInterfaceId.2=eni-b&NetworkInterfaceId.10=eni-c&NetworkInterfaceId.1=eni-a" +
		"&Filter.2.Name=tag%3Ateam&Filter.2.Value.1=blue&Filter.1.Name=attachment.instance-id&Filter.1.Value.2=i-2&Filter.1.Value.1=i-1" +
		"&MaxResults=5&DryRun=TRUE&Names.member.1=web&Tags.member.1.Key=k&Tags.member.1.Value="
	p, err := query.Parse(body, "Extra=1&X-Amz-Signature=abc", func(n string) bool { return strings.HasPrefix(n, "X-Amz-") })
	if err != nil {
		t.Fatal(err)
	}
	r := p.Root()
	if a, _ := r.String("Action"); a != "DescribeNetworkInterfaces" {
		t.Errorf("Action = %q", a)
	}
	if ids := r.List("NetworkInterfaceId"); !cmp.Equal(ids, []string{"eni-a", "eni-b", "eni-c"}) {
		t.Errorf("ids = %v; want in number order", ids)
	}
	type filter struct {
		Name   string
		Values []string
	}
	var filters []filter
	for _, f := range r.Structs("Filter") {
		name, _ := f.String("Name")
		filters = append(filters, filter{name, f.List("Value")})
	}
	want := []filter{{"attachment.instance-id", []string{"i-1", "i-2"}}, {"tag:team", []string{"blue"}}}
	if d := cmp.Diff(want, filters); d != "" {
		t.Errorf("filters (-want +got):\n%s", d)
	}
	if n, ok := r.Int("MaxResults"); !ok || n != 5 {
		t.Errorf("MaxResults = %d, %v", n, ok)
	}
	if b, ok := r.Bool("DryRun"); !ok || !b {
		t.Errorf("DryRun = %v, %v", b, ok)
	}
	if m := r.Members("Names"); !cmp.Equal(m, []string{"web"}) {
		t.Errorf("Names = %v", m)
	}
	tags := r.MemberStructs("Tags")
	if len(tags) != 1 {
		t.Fatalf("tags = %d", len(tags))
	}
	if v, ok := tags[0].String("Value"); !ok || v != "" {
		t.Errorf("an empty value must read as given and empty: %q, %v", v, ok)
	}
	tags[0].String("Key")
	if _, ok := r.String("Absent"); ok {
		t.Error("Absent is given")
	}
	if !r.Has("Filter") || r.Has("Filte") || !r.Has("MaxResults") {
		t.Error("Has is wrong")
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	if u := p.Unused(); !cmp.Equal(u, []string{"Extra", "Version"}) {
		t.Errorf("Unused = %v; want Extra and Version", u)
	}
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		name, body, query string
		read              func(query.View)
		code              string
	}{
		{name: "twice in the body", body: "A=1&A=2", code: query.CodeMalformed},
		{name: "twice across body and query", body: "A=1", query: "A=2", code: query.CodeMalformed},
		{name: "bad escape", body: "A=%zz", code: query.CodeMalformed},
		{name: "semicolon", body: "A=1;B=2", code: query.CodeMalformed},
		{name: "empty name", body: "=1", code: query.CodeMalformed},
		{name: "long name", body: strings.Repeat("n", 300) + "=1", code: query.CodeMalformed},
		{name: "not an integer", body: "MaxResults=five", read: func(v query.View) { v.Int("MaxResults") }, code: query.CodeInvalidValue},
		{name: "integer overflow", body: "MaxResults=99999999999", read: func(v query.View) { v.Int("MaxResults") }, code: query.CodeInvalidValue},
		{name: "not a boolean", body: "DryRun=yes", read: func(v query.View) { v.Bool("DryRun") }, code: query.CodeInvalidValue},
		{name: "list number zero", body: "Id.0=a", read: func(v query.View) { v.List("Id") }, code: query.CodeInvalidValue},
		{name: "list number with zero ahead", body: "Id.01=a", read: func(v query.View) { v.List("Id") }, code: query.CodeInvalidValue},
		{name: "list number too big", body: "Filter.100000.Name=a", read: func(v query.View) { v.Structs("Filter") }, code: query.CodeInvalidValue},
		{name: "missing", body: "A=1", read: func(v query.View) { v.Required("SubnetId") }, code: query.CodeMissing},
		{name: "empty required", body: "SubnetId=", read: func(v query.View) { v.Required("SubnetId") }, code: query.CodeMissing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := query.Parse(c.body, c.query, nil)
			if err == nil {
				if c.read != nil {
					c.read(p.Root())
				}
				err = p.Err()
			}
			var e *query.Error
			if !errors.As(err, &e) || e.Code != c.code || e.Msg == "" {
				t.Fatalf("err = %v; want %s with a message", err, c.code)
			}
		})
	}
	var b strings.Builder
	for i := range query.MaxParams + 1 {
		fmt.Fprintf(&b, "p%d=1&", i)
	}
	if _, err := query.Parse(b.String(), "", nil); err == nil {
		t.Fatalf("%d parameters accepted", query.MaxParams+1)
	}
}
