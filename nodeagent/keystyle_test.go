package nodeagent

import (
	"reflect"
	"testing"

	"github.com/flatnet/flatnet/internal/jsonstyle"
)

// TestKeyStyle: the JSON the agent writes keys its fields in lowerCamel with initialisms in
// capitals (podIP, podUID), Kubernetes' style and ipamd's: the echo server's answers (which the
// lab and the load balancer tests decode), the sandbox records on disk and the part of a pod's
// status the agent patches (Kubernetes' own nested types keep their keys).
func TestKeyStyle(t *testing.T) {
	problems, checked := jsonstyle.LowerCamel.Fields(
		reflect.TypeFor[Echo](), reflect.TypeFor[sandboxRecord](), reflect.TypeFor[podStatusPatch]())
	for _, p := range problems {
		t.Error(p)
	}
	if checked < 20 {
		t.Errorf("only %d fields checked: the walk missed the agent's types", checked)
	}
}
