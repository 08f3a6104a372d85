package api

import "time"

// --- Load-balancer tokens

// LoadBalancerToken is a credential of the load-balancer principal: it may call the load
// balancer, target group, listener, rule, tag and certificate actions, DescribeSubnets and the
// load balancer side of GetSnapshot and GetChanges, through the JSON API (Token) and the AWS
// front end (AccessKeyID, SecretAccessKey), and nothing else. Token and SecretAccessKey are
// answered only by CreateLoadBalancerToken.
type LoadBalancerToken struct {
	TokenID         string    `json:"TokenId"`
	Description     string    `json:"Description,omitempty"`
	Token           string    `json:"Token,omitempty"`
	AccessKeyID     string    `json:"AccessKeyId"`
	SecretAccessKey string    `json:"SecretAccessKey,omitempty"`
	CreateTime      time.Time `json:"CreateTime"`
}

type CreateLoadBalancerTokenRequest struct {
	Description string `json:"Description,omitempty"`
}
type CreateLoadBalancerTokenResponse struct {
	LoadBalancerToken LoadBalancerToken `json:"LoadBalancerToken"`
}

type DescribeLoadBalancerTokensRequest struct{}
type DescribeLoadBalancerTokensResponse struct {
	LoadBalancerTokens []LoadBalancerToken `json:"LoadBalancerTokens"`
}

// DeleteLoadBalancerTokenRequest revokes a token: its next call is refused.
type DeleteLoadBalancerTokenRequest struct {
	TokenID string `json:"TokenId"`
}
type DeleteLoadBalancerTokenResponse struct{}
