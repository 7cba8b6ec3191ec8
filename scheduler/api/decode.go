package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// decodeBody decodes the request body strictly into v: at most 1 MiB, well
// formed, one JSON object, no unknown members, every member of the right
// type. Errors name what is wrong and where.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return badRequest("request body exceeds %d bytes (1 MiB)", maxBody)
		}
		return badRequest("read request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("request body is required: a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("%s", describeDecodeError(err, body))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("malformed JSON: unexpected data after the JSON object at byte %d", dec.InputOffset())
	}
	return nil
}

func describeDecodeError(err error, body []byte) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "malformed JSON at byte " + strconv.FormatInt(se.Offset, 10) + ": " + strings.TrimPrefix(se.Error(), "json: ")
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return "request body: expected a JSON object, got " + te.Value
		}
		if te.Type.Kind() == reflect.String {
			if key := badMapValue(body, field); key != "" {
				field += "." + key // encoding/json names the map, not the key
			}
		}
		want := describeJSONType(te.Type.String())
		if got, ok := strings.CutPrefix(te.Value, "number "); ok && want == "a number" {
			return field + ": expected a whole number in range, got " + got
		}
		return field + ": expected " + want + ", got " + te.Value
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of input"
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown member " + f
	}
	return "malformed JSON: " + strings.TrimPrefix(msg, "json: ")
}

// badMapValue finds, in the object at the dotted path of body, the first key
// (sorted) whose value is not a string.
func badMapValue(body []byte, path string) string {
	var node any
	if json.Unmarshal(body, &node) != nil {
		return ""
	}
	for _, part := range strings.Split(path, ".") {
		m, ok := node.(map[string]any)
		if !ok {
			return ""
		}
		node = m[part]
	}
	m, ok := node.(map[string]any)
	if !ok {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := m[k].(string); !ok {
			return k
		}
	}
	return ""
}
