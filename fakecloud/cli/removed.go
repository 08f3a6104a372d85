package cli

import (
	"fmt"

	"github.com/spf13/pflag"
)

// removedFlag registers a hidden flag that is gone: giving it fails, saying why and what replaces
// it. Tokens were flags once; on a command line they are visible to every user of the machine.
func removedFlag(f *pflag.FlagSet, name, why string) {
	f.Var(removedValue{name, why}, name, "removed: "+why)
	_ = f.MarkHidden(name)
}

// removedValue is the value of a removed flag: setting it is the error.
type removedValue struct{ name, why string }

func (r removedValue) String() string   { return "" }
func (r removedValue) Type() string     { return "string" }
func (r removedValue) Set(string) error { return fmt.Errorf("--%s is removed: %s", r.name, r.why) }
