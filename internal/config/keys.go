package config

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// keysDoc is where an operator looks up the keys an error message names.
const keysDoc = "halosync.example.yaml documents every key"

// checkKeys reports the first key of n that type t has no field for, with its line, its
// place in the document and the nearest valid key.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := checkKeys(c, t, path); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return nil // a type error, which the decoder reports
		}
		for i, c := range n.Content {
			if err := checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		var names map[string]reflect.StructField
		if t.Kind() == reflect.Struct {
			names = yamlKeys(t)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			switch t.Kind() {
			case reflect.Map:
				if err := checkKeys(v, t.Elem(), join(path, k.Value)); err != nil {
					return err
				}
			case reflect.Struct:
				f, ok := names[k.Value]
				if !ok {
					return unknownKey(k, path, names)
				}
				if err := checkKeys(v, f.Type, join(path, k.Value)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlKeys maps each key a struct takes to its field.
func yamlKeys(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

func unknownKey(k *yaml.Node, path string, names map[string]reflect.StructField) error {
	where := "at the top level"
	if path != "" {
		where = "under " + path
	}
	msg := fmt.Sprintf("line %d: unknown key %q %s", k.Line, k.Value, where)
	best, bestD := "", -1
	for name := range names {
		if d := distance(strings.ToLower(k.Value), name); bestD < 0 || d < bestD || (d == bestD && name < best) {
			best, bestD = name, d
		}
	}
	// Only a near key is a suggestion: at most a third of the longer name differs.
	if best != "" && bestD*3 <= max(len(best), len(k.Value)) {
		msg += fmt.Sprintf("; did you mean %q?", best)
	}
	return fmt.Errorf("%w: %s (%s)", ErrInvalid, msg, keysDoc)
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line \d+: `) })

// syntaxError says where a document that does not parse goes wrong. The YAML library
// names the line its enclosing construct starts on; the first line after which the
// document stops parsing is where to look.
func syntaxError(data []byte, err error) error {
	msg := strings.TrimPrefix(yamlLine().ReplaceAllString(err.Error(), ""), "yaml: ")
	msg = quotedValue().ReplaceAllString(msg, "a value")
	lines := bytes.SplitAfter(data, []byte("\n"))
	for n := 1; n <= len(lines); n++ {
		var node yaml.Node
		if yaml.Unmarshal(bytes.Join(lines[:n], nil), &node) != nil {
			return fmt.Errorf("%w: line %d: not valid YAML (%s); look at its indentation (spaces only, as deep as the keys beside it) and at the line before", ErrInvalid, n, msg)
		}
	}
	return fmt.Errorf("%w: %s", ErrInvalid, msg)
}
