package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// MaxBodyBytes caps a request body.
const MaxBodyBytes = 1 << 20

// decodeRequest reads r's body into req strictly. On failure it returns the HTTP status to
// answer (0 for the error code's own) and an InvalidRequest saying what was wrong.
func decodeRequest(w http.ResponseWriter, r *http.Request, req any) (int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, api.Errorf(api.CodeInvalidRequest, "request body is over %d bytes: send less per call", MaxBodyBytes)
		}
		return 0, api.Errorf(api.CodeInvalidRequest, "cannot read the request body: %v", err)
	}
	return 0, decodeBody(body, req)
}

// decodeBody decodes exactly one JSON object into req, refusing unknown fields, wrong types and
// trailing data.
func decodeBody(body []byte, req any) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return api.Errorf(api.CodeInvalidRequest, "the request body is empty: send a JSON object (at least {})")
	}
	if trimmed[0] != '{' {
		return api.Errorf(api.CodeInvalidRequest, "the request body must be a JSON object starting with {, not %s", describeStart(trimmed[0]))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return explainDecodeError(err, req)
	}
	if rest := bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return api.Errorf(api.CodeInvalidRequest, "unexpected data after the JSON object at byte %d: send exactly one object", dec.InputOffset())
	}
	return nil
}

// explainDecodeError turns a decoding failure into a message that says which field and what
// was expected.
func explainDecodeError(err error, req any) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return api.Errorf(api.CodeInvalidRequest, "malformed JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return api.Errorf(api.CodeInvalidRequest, "the request body must be %s, not %s", jsonKind(typ.Type), typ.Value)
		}
		return api.Errorf(api.CodeInvalidRequest, "field %s must be %s, not %s", typ.Field, jsonKind(typ.Type), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return api.Errorf(api.CodeInvalidRequest, "truncated JSON: the body ends inside the object")
	}
	// encoding/json reports unknown fields with a plain error; its text names the field.
	return api.Errorf(api.CodeInvalidRequest, "%s in %s: see docs/fakecloud-api.md for its fields",
		strings.TrimPrefix(err.Error(), "json: "), requestName(req))
}

func describeStart(b byte) string {
	switch {
	case b == '[':
		return "an array"
	case b == '"':
		return "a string"
	case b == 'n':
		return "null"
	case b == 't' || b == 'f':
		return "a boolean"
	case b == '-' || (b >= '0' && b <= '9'):
		return "a number"
	}
	return fmt.Sprintf("%q", rune(b))
}

// jsonKind names a Go type the way a JSON author thinks of it.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonKind(t.Elem()), "an "), "a ") + "s"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return t.String()
}

func requestName(req any) string {
	t := reflect.TypeOf(req)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "the request"
	}
	return t.Name()
}
