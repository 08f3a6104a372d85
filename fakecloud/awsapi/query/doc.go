// Package query reads the parameters of an AWS Query protocol request (EC2, ELBv2): flat
// form-encoded names such as Filter.1.Value.2 or Names.member.1, read as scalars, numbered lists
// and lists of structures. It remembers what was read, so that a parameter no action knows is
// refused by name instead of silently ignored.
package query
