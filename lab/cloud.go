package lab

import (
	"github.com/flatnet/flatnet/fakecloud/fabric"
)

// The lab's --cloud values.
const (
	// CloudFakecloud: ipamd and lbcontroller use the fakecloud driver (fakecloud's JSON API).
	CloudFakecloud = "fakecloud"
	// CloudAWSAPI: they use the AWS driver against fakecloud's EC2 and ELBv2 endpoint.
	CloudAWSAPI = "aws-api"
	// AWSRegion is the region the lab's AWS clients sign for (fakecloud takes any).
	AWSRegion = "us-east-1"
)

// driverName is the --cloud of flatnet's binaries for the lab's cloud.
func (l *Lab) driverName() string {
	if l.st.Config.Cloud == CloudAWSAPI {
		return "aws"
	}
	return "fakecloud"
}

// ipamdEnv is the environment of an ipamd the lab runs itself: with the AWS driver, the region,
// fakecloud's endpoint (as the chart's cloud.aws.endpoint does) and no credentials of the host's,
// so that the SDK's chain takes the instance role's from the node's metadata service.
func (l *Lab) ipamdEnv() []string {
	if l.st.Config.Cloud != CloudAWSAPI {
		return nil
	}
	return []string{"AWS_REGION=" + AWSRegion, "AWS_ENDPOINT_URL=" + fabric.APIEndpoint(), "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_PROFILE=",
		"AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_CONFIG_FILE=/nonexistent"}
}
