package config

import (
	"bytes"
	"context"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The example file documents every key of the schema (README.md, "Configuration"): the
// keys it sets and the ones it shows commented out.

const exampleFile = "../../halosync.example.yaml"

// commentedKey is a commented-out line of YAML: "# key: ...", "# - key: ..." or
// `# "quoted key": ...`, after the "# " that comments it out.
var commentedKey = regexp.MustCompile(`^(\s*)# ((\s*)(- )?([a-z_][a-z0-9_]*|"[^"]+"):(\s.*)?)$`)

// uncomment turns the example's commented-out keys into keys, keeping their indentation
// relative to the lines around them; prose comments stay comments.
func uncomment(doc string) string {
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		if m := commentedKey.FindStringSubmatch(l); m != nil {
			lines[i] = m[1] + m[2]
		}
	}
	return strings.Join(lines, "\n")
}

// schemaKeys lists every key path of t: "a.b" for a field, "[]" for a list's items, "{}"
// for a map's values.
func schemaKeys(t reflect.Type, path string, out map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			p := strings.TrimPrefix(path+"."+name, ".")
			out[p] = true
			schemaKeys(f.Type, p, out)
		}
	case reflect.Slice:
		schemaKeys(t.Elem(), path+"[]", out)
	case reflect.Map:
		schemaKeys(t.Elem(), path+"{}", out)
	}
}

// exampleKeys lists the key paths of a YAML node, read as the type t says.
func exampleKeys(t *testing.T, n *yaml.Node, typ reflect.Type, path string, out map[string]bool) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch {
	case typ.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.Type{}
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
			fields[name] = typ.Field(i).Type
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			p := strings.TrimPrefix(path+"."+k, ".")
			ft, ok := fields[k]
			if !ok {
				t.Errorf("%s (line %d) is not a key of the schema", p, n.Content[i].Line)
				continue
			}
			out[p] = true
			exampleKeys(t, n.Content[i+1], ft, p, out)
		}
	case typ.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for _, item := range n.Content {
			exampleKeys(t, item, typ.Elem(), path+"[]", out)
		}
	case typ.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			exampleKeys(t, n.Content[i], typ.Elem(), path+"{}", out)
		}
	}
}

func readExample(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestExampleDocumentsEveryKey(t *testing.T) {
	doc := uncomment(readExample(t))

	// Every key shown, set or commented out, is a real key of the right type.
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("the example with its commented-out keys does not decode: %v", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	exampleKeys(t, root.Content[0], reflect.TypeFor[Config](), "", shown)

	// Every key of the schema is shown.
	schema := map[string]bool{}
	schemaKeys(reflect.TypeFor[Config](), "", schema)
	var missing []string
	for k := range schema {
		if !shown[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("halosync.example.yaml does not show these keys:\n  %s", strings.Join(missing, "\n  "))
	}
	if len(shown) < 50 {
		t.Errorf("only %d key paths read from the example; is the walk broken?", len(shown))
	}
}

// schemeKeys are the keys each authentication scheme reads (AuthScheme's comments).
var schemeKeys = map[string][]string{
	"basic":            {"username", "passwords"},
	"hmac":             {"header", "prefix", "encoding", "secrets"},
	"header":           {"header", "prefix", "tokens"},
	"signed-timestamp": {"secrets", "tolerance_seconds"},
	"path-secret":      {"secrets"},
}

func TestExampleShowsEveryAuthScheme(t *testing.T) {
	// The table above names every key of AuthScheme, and only real schemes.
	all := map[string]bool{}
	schemaKeys(reflect.TypeFor[AuthScheme](), "", all)
	named := map[string]bool{"scheme": true}
	for s, keys := range schemeKeys {
		for _, k := range keys {
			named[k] = true
		}
		if err := (AuthScheme{Scheme: s}).validate(); err != nil && strings.Contains(err.Error(), "unknown scheme") {
			t.Errorf("%s: %v", s, err)
		}
	}
	if !reflect.DeepEqual(all, named) {
		t.Errorf("AuthScheme's keys %v, the schemes' keys here %v: say which scheme reads a new key", all, named)
	}

	var doc struct {
		Connections []struct {
			Webhook struct {
				Auth []map[string]any `yaml:"auth"`
			} `yaml:"webhook"`
		} `yaml:"connections"`
	}
	if err := yaml.Unmarshal([]byte(uncomment(readExample(t))), &doc); err != nil {
		t.Fatal(err)
	}
	for s, keys := range schemeKeys {
		found := false
		for _, conn := range doc.Connections {
			for _, a := range conn.Webhook.Auth {
				if a["scheme"] != s {
					continue
				}
				found = true
				for _, k := range keys {
					if _, ok := a[k]; !ok {
						t.Errorf("scheme %s: the example does not show %s", s, k)
					}
				}
			}
		}
		if !found {
			t.Errorf("the example shows no %s scheme", s)
		}
	}
}

// The example as it stands, without its commented-out keys, is a valid configuration.
func TestExampleParses(t *testing.T) {
	if _, err := Parse(context.Background(), []byte(readExample(t)), nil); err != nil {
		t.Fatal(err)
	}
}
