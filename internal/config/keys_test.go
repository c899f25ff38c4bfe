package config

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestParseSaysWhereAndWhat: an unknown key is named with its line, its place and the
// nearest valid key; a document that does not parse names the line where it goes wrong.
func TestParseSaysWhereAndWhat(t *testing.T) {
	const base = "connections:\n  - id: a\n    webhook:\n      auth:\n        - scheme: basic\n          username: u\n          passwords: [p]\n"
	for _, tt := range []struct{ doc, want string }{
		{base + "      max_body_byte: 5\n",
			`line 8: unknown key "max_body_byte" under connections[0].webhook; did you mean "max_body_bytes"? (halosync.example.yaml documents every key)`},
		{base + "    hallo: {}\n", `line 8: unknown key "hallo" under connections[0]; did you mean "halo"?`},
		{base + "    stored_fields:\n      ticket: {inclde: [id]}\n", `line 9: unknown key "inclde" under connections[0].stored_fields.ticket; did you mean "include"?`},
		{base + "stor: {}\n", `line 8: unknown key "stor" at the top level; did you mean "store"?`},
		{base + "    zzzzzzzz: 1\n", `line 8: unknown key "zzzzzzzz" under connections[0] (halosync.example.yaml`},
		{"connections:\n  - id: a\n   webhook: 1\n", "line 3: not valid YAML"},
		{"connections:\n  - id: a\n    webhook: [\n  x: 1\n", "line 3: not valid YAML"},
		{"connections:\n  - id: a\n\twebhook: 1\n", "line 3: not valid YAML (found a tab character"},
	} {
		_, err := Parse(context.Background(), []byte(tt.doc), nil)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.doc, err, tt.want)
		}
	}
}
