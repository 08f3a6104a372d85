package api

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrReplaceSyntax is ScanReplace's error for a $ that starts no reference.
var ErrReplaceSyntax = errors.New("a $ must be followed by a group number ($1 or ${1}) or another $ (a literal $)")

// ScanReplace reads a RegexRewrite's Replace for a regex with groups groups, in order: lit
// gets each run of literal text ($$ is a literal $), group each reference ($n or ${n}, n the
// digits that follow, 0 the whole match). The store checks replacements with it and the data
// plane compiles them with it, so that both read one syntax. Errors: ErrReplaceSyntax, or a
// reference to a group the regex lacks.
func ScanReplace(s string, groups int, lit func(string), group func(int)) error {
	start := 0 // where the current literal began
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			continue
		}
		if start < i {
			lit(s[start:i])
		}
		j := i + 1
		if j < len(s) && s[j] == '$' {
			lit("$")
			i, start = j, j+1
			continue
		}
		braced := j < len(s) && s[j] == '{'
		if braced {
			j++
		}
		k := j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k == j || braced && (k == len(s) || s[k] != '}') {
			return ErrReplaceSyntax
		}
		n, err := strconv.Atoi(s[j:k])
		if err != nil || n > groups {
			return fmt.Errorf("refers to group %s, but the Regex has %d groups", s[j:k], groups)
		}
		group(n)
		if braced {
			k++
		}
		i, start = k-1, k
	}
	if start < len(s) {
		lit(s[start:])
	}
	return nil
}
