package wire

import (
	"reflect"
	"testing"

	"github.com/flatnet/flatnet/internal/jsonstyle"
)

// TestKeyStyle: the protocol keeps one key style, lowerCamel with initialisms in capitals
// (containerID, vpcCIDRs), the style of ipamd's introspection API, on everything either side
// writes: requests, responses and spool files (ReleaseRequest), nested types included.
func TestKeyStyle(t *testing.T) {
	problems, checked := jsonstyle.LowerCamel.Fields(reflect.TypeFor[Request](), reflect.TypeFor[Response]())
	for _, p := range problems {
		t.Error(p)
	}
	if checked < 30 {
		t.Errorf("only %d fields checked: the walk missed the protocol's types", checked)
	}
}
