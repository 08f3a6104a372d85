package awsapi_test

import (
	"encoding/xml"
	"net/http"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// FuzzEC2Request sends arbitrary, correctly signed form bodies to the EC2 front end. Whatever the
// parameters, the answer is a well-formed XML document — an action's answer, or EC2's error
// document with a code — and never an internal error.
func FuzzEC2Request(f *testing.F) {
	f.Add("Action=DescribeNetworkInterfaces&Version=2016-11-15&Filter.1.Name=attachment.instance-id&Filter.1.Value.1=i-1&MaxResults=5")
	f.Add("Action=AssignPrivateIpAddresses&Version=2016-11-15&NetworkInterfaceId=eni-1&SecondaryPrivateIpAddressCount=2&Ipv4Prefix.1=10.0.0.16/28")
	f.Add("Action=ModifyNetworkInterfaceAttribute&Version=2016-11-15&NetworkInterfaceId=eni-1&Attachment.AttachmentId=a&Attachment.DeleteOnTermination=true")
	w := newWorld(f, servertest.Options{}, "m5.large", 1)
	key := servertest.AWSKey
	f.Fuzz(func(t *testing.T, body string) {
		// Keep the fuzzer to the front end: real interface and subnet IDs make more calls succeed.
		body = strings.NewReplacer("eni-1", w.instances[0].NetworkInterfaces[0].NetworkInterfaceID, "subnet-1", w.subnet.SubnetID).Replace(body)
		r := w.send(t, &key, "ec2", body, timeZero)
		if r.status >= 500 {
			t.Fatalf("status %d for %q: %s", r.status, body, r.body)
		}
		var doc struct {
			XMLName xml.Name
			Code    string `xml:"Errors>Error>Code"`
		}
		if err := xml.Unmarshal([]byte(r.body), &doc); err != nil {
			t.Fatalf("answer to %q is not XML: %v\n%s", body, err, r.body)
		}
		switch {
		case r.status == http.StatusOK && strings.HasSuffix(doc.XMLName.Local, "Response") && doc.XMLName.Local != "Response":
		case r.status != http.StatusOK && doc.XMLName.Local == "Response" && doc.Code != "":
		default:
			t.Fatalf("status %d with document <%s> (code %q) for %q", r.status, doc.XMLName.Local, doc.Code, body)
		}
	})
}
