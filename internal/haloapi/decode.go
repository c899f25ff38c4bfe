package haloapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// decodeJSONObject decodes one JSON object, numbers as json.Number.
func decodeJSONObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if m == nil {
		return nil, errors.New("not a JSON object: null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return m, nil
}

// decodePage reads a list answer: {"record_count": N, "<envelope>": [...]} or a bare
// array. count is -1 when the answer has none.
func decodePage(body []byte, envelope string) (items []map[string]any, count int, bare bool, err error) {
	body = bytes.TrimSpace(body)
	count = -1
	if len(body) > 0 && body[0] == '[' {
		items, err = decodeItems(body)
		return items, len(items), true, err
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil || env == nil {
		return nil, -1, false, fmt.Errorf("not a JSON object or array: %v", err)
	}
	if raw, ok := lookupRaw(env, ParamRecordCount); ok {
		var n json.Number
		if err := json.Unmarshal(bytes.Trim(raw, `"`), &n); err == nil {
			if f, err := n.Float64(); err == nil && f >= 0 {
				count = int(f)
			}
		}
	}
	raw, ok := lookupRaw(env, envelope)
	if !ok {
		if count == 0 {
			return nil, 0, false, nil
		}
		return nil, -1, false, fmt.Errorf("the answer has no %q array", envelope)
	}
	items, err = decodeItems(raw)
	return items, count, false, err
}

func decodeItems(raw []byte) ([]map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var items []map[string]any
	if err := dec.Decode(&items); err != nil {
		return nil, fmt.Errorf("not an array of objects: %w", err)
	}
	out := items[:0]
	for _, it := range items {
		if it != nil {
			out = append(out, it)
		}
	}
	return out, nil
}

// lookupKey finds a key exactly, else ignoring case.
func lookupKey(m map[string]any, key string) any {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

func lookupRaw(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}
