package ipamd

import (
	"reflect"
	"testing"

	"github.com/flatnet/flatnet/internal/jsonstyle"
	"github.com/flatnet/flatnet/ipamd/store"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// introspectionAnswers are the Go types the introspection server encodes, one per endpoint.
var introspectionAnswers = map[string]reflect.Type{
	"/v1/pool":       reflect.TypeFor[PoolView](),
	"/v1/config":     reflect.TypeFor[ConfigView](),
	"/v1/addresses":  reflect.TypeFor[[]AddressView](),
	"/v1/interfaces": reflect.TypeFor[[]store.Interface](),
	"/v1/fastpath":   reflect.TypeFor[fastPathView](),
	"/readyz":        reflect.TypeFor[wire.StatusResponse](),
}

// TestIntrospectionKeyStyle: every answer of the introspection server keys its fields in
// lowerCamel case with initialisms in capitals (subnetID, ipv4PerInterface), checked on the Go
// types each handler encodes, nested and embedded ones included: a field without a json tag
// (keyed by its Go name) or in another style fails here, naming the type and the field.
// TestIntrospectionAnswers checks the same on the answers of a running daemon.
func TestIntrospectionKeyStyle(t *testing.T) {
	for path, typ := range introspectionAnswers {
		problems, checked := jsonstyle.LowerCamel.Fields(typ)
		for _, p := range problems {
			t.Errorf("%s: %s", path, p)
		}
		if checked == 0 {
			t.Errorf("%s: no field of %s checked", path, typ)
		}
	}
}
