package client

import (
	"context"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// The application load balancer actions (rules, certificates, listener changes), one method
// each; see docs/fakecloud-api.md.

// ModifyListener calls ModifyListener.
func (c *Client) ModifyListener(ctx context.Context, req *api.ModifyListenerRequest) (*api.ModifyListenerResponse, error) {
	return call[api.ModifyListenerRequest, api.ModifyListenerResponse](ctx, c, api.ActionModifyListener, req)
}

// CreateRule calls CreateRule.
func (c *Client) CreateRule(ctx context.Context, req *api.CreateRuleRequest) (*api.CreateRuleResponse, error) {
	return call[api.CreateRuleRequest, api.CreateRuleResponse](ctx, c, api.ActionCreateRule, req)
}

// ModifyRule calls ModifyRule.
func (c *Client) ModifyRule(ctx context.Context, req *api.ModifyRuleRequest) (*api.ModifyRuleResponse, error) {
	return call[api.ModifyRuleRequest, api.ModifyRuleResponse](ctx, c, api.ActionModifyRule, req)
}

// DeleteRule calls DeleteRule.
func (c *Client) DeleteRule(ctx context.Context, req *api.DeleteRuleRequest) (*api.DeleteRuleResponse, error) {
	return call[api.DeleteRuleRequest, api.DeleteRuleResponse](ctx, c, api.ActionDeleteRule, req)
}

// DescribeRules calls DescribeRules.
func (c *Client) DescribeRules(ctx context.Context, req *api.DescribeRulesRequest) (*api.DescribeRulesResponse, error) {
	return call[api.DescribeRulesRequest, api.DescribeRulesResponse](ctx, c, api.ActionDescribeRules, req)
}

// SetRulePriorities calls SetRulePriorities.
func (c *Client) SetRulePriorities(ctx context.Context, req *api.SetRulePrioritiesRequest) (*api.SetRulePrioritiesResponse, error) {
	return call[api.SetRulePrioritiesRequest, api.SetRulePrioritiesResponse](ctx, c, api.ActionSetRulePriorities, req)
}

// ImportCertificate calls ImportCertificate.
func (c *Client) ImportCertificate(ctx context.Context, req *api.ImportCertificateRequest) (*api.ImportCertificateResponse, error) {
	return call[api.ImportCertificateRequest, api.ImportCertificateResponse](ctx, c, api.ActionImportCertificate, req)
}

// DescribeCertificates calls DescribeCertificates.
func (c *Client) DescribeCertificates(ctx context.Context, req *api.DescribeCertificatesRequest) (*api.DescribeCertificatesResponse, error) {
	return call[api.DescribeCertificatesRequest, api.DescribeCertificatesResponse](ctx, c, api.ActionDescribeCertificates, req)
}

// DeleteCertificate calls DeleteCertificate.
func (c *Client) DeleteCertificate(ctx context.Context, req *api.DeleteCertificateRequest) (*api.DeleteCertificateResponse, error) {
	return call[api.DeleteCertificateRequest, api.DeleteCertificateResponse](ctx, c, api.ActionDeleteCertificate, req)
}

// AddListenerCertificates calls AddListenerCertificates.
func (c *Client) AddListenerCertificates(ctx context.Context, req *api.AddListenerCertificatesRequest) (*api.AddListenerCertificatesResponse, error) {
	return call[api.AddListenerCertificatesRequest, api.AddListenerCertificatesResponse](ctx, c, api.ActionAddListenerCertificates, req)
}

// RemoveListenerCertificates calls RemoveListenerCertificates.
func (c *Client) RemoveListenerCertificates(ctx context.Context, req *api.RemoveListenerCertificatesRequest) (*api.RemoveListenerCertificatesResponse, error) {
	return call[api.RemoveListenerCertificatesRequest, api.RemoveListenerCertificatesResponse](ctx, c, api.ActionRemoveListenerCertificates, req)
}
