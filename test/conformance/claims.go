package conformance

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/pkg/features"
	"sigs.k8s.io/yaml"
)

// Claims is what flatnet claims in the suite (conformance/claims.yaml).
type Claims struct {
	// Profiles are claimed: a failing core test of one fails the run.
	Profiles []string `json:"profiles"`
	// Reported profiles run and are reported; their failures do not fail the run.
	Reported []string `json:"reported"`
	// ExtendedFeatures are claimed too: a failing test of one fails the run.
	ExtendedFeatures []string `json:"extendedFeatures"`
}

// gatewayProfiles are the suite's Gateway profiles by name (the mesh ones do not apply).
var gatewayProfiles = map[string]suite.ConformanceProfile{
	string(suite.GatewayHTTPConformanceProfileName): suite.GatewayHTTPConformanceProfile,
	string(suite.GatewayGRPCConformanceProfileName): suite.GatewayGRPCConformanceProfile,
	string(suite.GatewayTLSConformanceProfileName):  suite.GatewayTLSConformanceProfile,
	string(suite.GatewayTCPConformanceProfileName):  suite.GatewayTCPConformanceProfile,
	string(suite.GatewayUDPConformanceProfileName):  suite.GatewayUDPConformanceProfile,
}

// LoadClaims reads and checks a claims file.
func LoadClaims(path string) (Claims, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Claims{}, fmt.Errorf("read the claims: %w", err)
	}
	return ParseClaims(raw)
}

// ParseClaims reads claims (YAML, unknown fields refused) and checks every name against the
// suite's profiles and features.
func ParseClaims(raw []byte) (Claims, error) {
	var c Claims
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		return Claims{}, fmt.Errorf("claims: %w", err)
	}
	var errs []error
	if len(c.Profiles) == 0 {
		errs = append(errs, errors.New("claims: profiles is empty: claim at least one profile"))
	}
	for _, p := range append(append([]string{}, c.Profiles...), c.Reported...) {
		if _, ok := gatewayProfiles[p]; !ok {
			errs = append(errs, fmt.Errorf("claims: profile %q is not a Gateway profile of the suite (%s)", p, strings.Join(sets.List(sets.KeySet(gatewayProfiles)), ", ")))
		}
	}
	for _, p := range c.Reported {
		if slices.Contains(c.Profiles, p) {
			errs = append(errs, fmt.Errorf("claims: profile %s is both claimed and only reported: keep it in one list", p))
		}
	}
	known := features.SetsToNamesSet(features.AllFeatures)
	for _, f := range c.ExtendedFeatures {
		if !known.Has(features.FeatureName(f)) {
			errs = append(errs, fmt.Errorf("claims: extended feature %q is not a feature of the suite (sigs.k8s.io/gateway-api/pkg/features)", f))
		}
	}
	return c, errors.Join(errs...)
}

// SuiteProfiles is the suite's -conformance-profiles: the claimed profiles, then the reported.
func (c Claims) SuiteProfiles() string {
	return strings.Join(append(append([]string{}, c.Profiles...), c.Reported...), ",")
}

// SupportedFeatures is the suite's -supported-features: the core features of every profile run
// and the claimed extended features, sorted. The suite would add the core features itself; they
// are named so that the list is never empty (an empty list makes the suite infer the features
// from the GatewayClass's status instead).
func (c Claims) SupportedFeatures() string {
	fs := sets.New[string](c.ExtendedFeatures...)
	for _, p := range append(append([]string{}, c.Profiles...), c.Reported...) {
		for f := range gatewayProfiles[p].CoreFeatures {
			fs.Insert(string(f))
		}
	}
	return strings.Join(sets.List(fs), ",")
}
