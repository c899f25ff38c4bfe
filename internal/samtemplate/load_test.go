package samtemplate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file reads a CloudFormation/SAM template into plain Go values (map[string]any, []any,
// string, int, float64, bool, nil), turning the short-form intrinsic tags (!Ref, !GetAtt, !Sub,
// !If, ...) into their long forms ({"Ref": x}, {"Fn::GetAtt": [a, b]}, ...). goformation
// resolves intrinsics while it parses, so the wiring checks look at this form instead.

// template is a parsed template in long form.
type template struct {
	doc map[string]any
}

// parseTemplate reads YAML (or JSON, which is YAML) into long form. Duplicate mapping keys are
// an error: YAML parsers keep the last one silently, which hides a duplicated logical id.
func parseTemplate(data []byte) (*template, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("empty template")
	}
	v, err := fromNode(root.Content[0])
	if err != nil {
		return nil, err
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template is a %T, not a mapping", v)
	}
	return &template{doc: doc}, nil
}

// fromNode converts a YAML node, expanding short-form intrinsic tags.
func fromNode(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return fromNode(n.Content[0])
	case yaml.AliasNode:
		return fromNode(n.Alias)
	}
	var v any
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", n.Content[i].Line, k)
			}
			val, err := fromNode(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = val
		}
		v = m
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := fromNode(c)
			if err != nil {
				return nil, err
			}
			l = append(l, val)
		}
		v = l
	case yaml.ScalarNode:
		if isCustomTag(n.Tag) {
			v = n.Value // the operand of a short-form intrinsic is a string
		} else if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
	}
	if isCustomTag(n.Tag) {
		return longForm(n.Tag[1:], v), nil
	}
	return v, nil
}

func isCustomTag(tag string) bool {
	return strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!")
}

// longForm is what CloudFormation makes of "!name operand".
func longForm(name string, operand any) any {
	switch name {
	case "Ref", "Condition":
		return map[string]any{name: operand}
	case "GetAtt":
		if s, ok := operand.(string); ok {
			if res, attr, found := strings.Cut(s, "."); found {
				return map[string]any{"Fn::GetAtt": []any{res, attr}}
			}
		}
		return map[string]any{"Fn::GetAtt": operand}
	default:
		return map[string]any{"Fn::" + name: operand}
	}
}

// knownIntrinsics are the long-form intrinsic function names CloudFormation accepts.
var knownIntrinsics = map[string]bool{
	"Ref": true, "Condition": true,
	"Fn::GetAtt": true, "Fn::Sub": true, "Fn::If": true, "Fn::Join": true, "Fn::Split": true,
	"Fn::Select": true, "Fn::Equals": true, "Fn::Not": true, "Fn::And": true, "Fn::Or": true,
	"Fn::FindInMap": true, "Fn::Base64": true, "Fn::Cidr": true, "Fn::ImportValue": true,
	"Fn::GetAZs": true, "Fn::Transform": true, "Fn::Length": true, "Fn::ToJsonString": true,
}

// pseudoParameters are the names Ref and Sub accept without a declaration.
var pseudoParameters = map[string]bool{
	"AWS::AccountId": true, "AWS::NotificationARNs": true, "AWS::NoValue": true,
	"AWS::Partition": true, "AWS::Region": true, "AWS::StackId": true, "AWS::StackName": true,
	"AWS::URLSuffix": true,
}

// intrinsic reports whether v is a one-key mapping naming an intrinsic function (or an
// unknown "Fn::" one), and returns its name and operand.
func intrinsic(v any) (name string, operand any, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", nil, false
	}
	for k, val := range m {
		if knownIntrinsics[k] || strings.HasPrefix(k, "Fn::") {
			if k == "Condition" {
				if _, isString := val.(string); !isString {
					return "", nil, false // an IAM statement's Condition block, not the intrinsic
				}
			}
			return k, val, true
		}
	}
	return "", nil, false
}

// --- small accessors ------------------------------------------------------------------------

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// asList returns v as a list; a single value is a list of one, as IAM and CloudFormation allow.
func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	default:
		return []any{x}
	}
}

func asString(v any) (string, bool) {
	s, ok := v.(string)
	return s, ok
}

// asNumber accepts YAML numbers and numeric strings (CloudFormation accepts both).
func asNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

// asBool accepts YAML booleans and "true"/"false" strings.
func asBool(v any) (value, ok bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		b, err := strconv.ParseBool(x)
		return b, err == nil
	}
	return false, false
}

// get walks mappings along keys; nil when a key is missing.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m := asMap(v)
		if m == nil {
			return nil
		}
		v = m[k]
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// deepCopy copies a long-form value, so a test can mutate a template without touching another.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[k] = deepCopy(val)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, val := range x {
			l[i] = deepCopy(val)
		}
		return l
	default:
		return v
	}
}

func (t *template) clone() *template {
	return &template{doc: deepCopy(t.doc).(map[string]any)}
}

// --- template accessors ---------------------------------------------------------------------

func (t *template) section(name string) map[string]any { return asMap(t.doc[name]) }

func (t *template) resource(id string) map[string]any { return asMap(t.section("Resources")[id]) }

func (t *template) typeOf(id string) string {
	s, _ := asString(t.resource(id)["Type"])
	return s
}

func (t *template) props(id string) map[string]any { return asMap(t.resource(id)["Properties"]) }

func (t *template) isResource(id string) bool { return t.resource(id) != nil }

func (t *template) isParameter(id string) bool { return t.section("Parameters")[id] != nil }

func (t *template) isCondition(id string) bool {
	_, ok := t.section("Conditions")[id]
	return ok
}

// ofType lists the logical ids of the resources of a type, sorted.
func (t *template) ofType(typ string) []string {
	var ids []string
	for _, id := range sortedKeys(t.section("Resources")) {
		if t.typeOf(id) == typ {
			ids = append(ids, id)
		}
	}
	return ids
}

// --- references -----------------------------------------------------------------------------

// target is one thing an intrinsic names: a Ref, a GetAtt, a ${X} or ${X.Attr} of a Sub, or a
// condition (Fn::If, Condition).
type target struct {
	kind string // "Ref", "GetAtt", "Condition"
	name string
	attr string // GetAtt only
	path string // where in the template
}

// targets lists what v refers to, depth first, in a stable order. Names that a Fn::Sub
// declares in its own variable map are local to it and not listed.
func targets(v any, path string) []target {
	var out []target
	var walk func(v any, path string)
	walk = func(v any, path string) {
		if name, operand, ok := intrinsic(v); ok {
			p := path + "." + name
			switch name {
			case "Ref":
				s, _ := asString(operand)
				out = append(out, target{kind: "Ref", name: s, path: p})
				return
			case "Condition":
				s, _ := asString(operand)
				out = append(out, target{kind: "Condition", name: s, path: p})
				return
			case "Fn::GetAtt":
				res, attr := getAttOperand(operand)
				out = append(out, target{kind: "GetAtt", name: res, attr: attr, path: p})
				return
			case "Fn::Sub":
				body, vars := subOperand(operand)
				for _, ref := range subRefs(body) {
					if _, local := vars[ref]; local {
						continue
					}
					res, attr, dotted := strings.Cut(ref, ".")
					if dotted && !pseudoParameters[ref] {
						out = append(out, target{kind: "GetAtt", name: res, attr: attr, path: p})
					} else {
						out = append(out, target{kind: "Ref", name: ref, path: p})
					}
				}
				for _, k := range sortedKeys(vars) {
					walk(vars[k], p+"."+k)
				}
				return
			case "Fn::If":
				args := asList(operand)
				if len(args) > 0 {
					s, _ := asString(args[0])
					out = append(out, target{kind: "Condition", name: s, path: p})
					for i, a := range args[1:] {
						walk(a, fmt.Sprintf("%s[%d]", p, i+1))
					}
				}
				return
			}
			walk(operand, p)
			return
		}
		switch x := v.(type) {
		case map[string]any:
			for _, k := range sortedKeys(x) {
				walk(x[k], path+"."+k)
			}
		case []any:
			for i, e := range x {
				walk(e, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(v, path)
	return out
}

func getAttOperand(operand any) (res, attr string) {
	switch x := operand.(type) {
	case string:
		res, attr, _ = strings.Cut(x, ".")
	case []any:
		if len(x) > 0 {
			res, _ = asString(x[0])
		}
		if len(x) > 1 {
			attr, _ = asString(x[1])
		}
	}
	return res, attr
}

// subOperand splits Fn::Sub's operand: a string, or [string, {name: value}].
func subOperand(operand any) (body string, vars map[string]any) {
	switch x := operand.(type) {
	case string:
		return x, nil
	case []any:
		if len(x) > 0 {
			body, _ = asString(x[0])
		}
		if len(x) > 1 {
			vars = asMap(x[1])
		}
	}
	return body, vars
}

// subRefs lists the ${...} names of a Fn::Sub string; ${!Literal} is an escape, not a name.
func subRefs(s string) []string {
	var out []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return out
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return out
		}
		name := strings.TrimSpace(s[i+2 : i+j])
		s = s[i+j+1:]
		if !strings.HasPrefix(name, "!") {
			out = append(out, name)
		}
	}
}

// resourceTargets lists, sorted and without repeats, the declared resources v refers to.
func (t *template) resourceTargets(v any) []string {
	seen := map[string]bool{}
	for _, tg := range targets(v, "") {
		if tg.kind != "Condition" && t.isResource(tg.name) {
			seen[tg.name] = true
		}
	}
	return sortedKeys(seen)
}

// --- evaluation -----------------------------------------------------------------------------

// eval computes the string (or list of strings) an expression has at deploy time with the
// parameters at their defaults. A resource's Ref is "<Id>" except for an SSM parameter, whose
// Ref is its name; a GetAtt is "<Id.Attr>"; a pseudo parameter is "<AWS::Name>".
func (t *template) eval(v any) (any, error) {
	if name, operand, ok := intrinsic(v); ok {
		switch name {
		case "Ref":
			s, _ := asString(operand)
			return t.evalRef(s)
		case "Fn::GetAtt":
			res, attr := getAttOperand(operand)
			return "<" + res + "." + attr + ">", nil
		case "Fn::Sub":
			body, vars := subOperand(operand)
			var err error
			out := body
			for _, ref := range subRefs(body) {
				var val any
				if local, ok := vars[ref]; ok {
					val, err = t.eval(local)
				} else if res, attr, dotted := strings.Cut(ref, "."); dotted {
					val = "<" + res + "." + attr + ">"
				} else {
					val, err = t.evalRef(ref)
				}
				if err != nil {
					return nil, err
				}
				s, ok := val.(string)
				if !ok {
					return nil, fmt.Errorf("${%s} is not a string", ref)
				}
				out = strings.Replace(out, "${"+ref+"}", s, 1)
			}
			return out, nil
		case "Fn::Join":
			args := asList(operand)
			if len(args) != 2 {
				return nil, fmt.Errorf("Fn::Join needs [separator, list]")
			}
			sep, _ := asString(args[0])
			list, err := t.evalStrings(args[1])
			if err != nil {
				return nil, err
			}
			return strings.Join(list, sep), nil
		case "Fn::Split":
			args := asList(operand)
			if len(args) != 2 {
				return nil, fmt.Errorf("Fn::Split needs [separator, string]")
			}
			sep, _ := asString(args[0])
			s, err := t.eval(args[1])
			if err != nil {
				return nil, err
			}
			str, ok := s.(string)
			if !ok {
				return nil, fmt.Errorf("Fn::Split of a non-string")
			}
			var out []any
			for _, part := range strings.Split(str, sep) {
				out = append(out, part)
			}
			return out, nil
		case "Fn::Select":
			args := asList(operand)
			if len(args) != 2 {
				return nil, fmt.Errorf("Fn::Select needs [index, list]")
			}
			i, ok := asNumber(args[0])
			list, err := t.evalStrings(args[1])
			if err != nil {
				return nil, err
			}
			if !ok || int(i) < 0 || int(i) >= len(list) {
				return nil, fmt.Errorf("Fn::Select index out of range")
			}
			return list[int(i)], nil
		}
		return nil, fmt.Errorf("cannot evaluate %s", name)
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case []any:
		return x, nil
	}
	return nil, fmt.Errorf("cannot evaluate a %T", v)
}

func (t *template) evalStrings(v any) ([]string, error) {
	r, err := t.eval(v)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range asList(r) {
		ev, err := t.eval(e)
		if err != nil {
			return nil, err
		}
		s, ok := ev.(string)
		if !ok {
			return nil, fmt.Errorf("list element is not a string")
		}
		out = append(out, s)
	}
	return out, nil
}

func (t *template) evalRef(name string) (any, error) {
	switch {
	case pseudoParameters[name]:
		return "<" + name + ">", nil
	case t.isParameter(name):
		switch def := get(t.section("Parameters")[name], "Default").(type) {
		case string:
			return def, nil
		case int, float64:
			return fmt.Sprint(def), nil // a Number parameter's value reaches Sub as text
		}
		return nil, fmt.Errorf("parameter %s has no string or number Default", name)
	case t.typeOf(name) == "AWS::SSM::Parameter":
		if n, ok := t.props(name)["Name"]; ok {
			return t.eval(n)
		}
		return nil, fmt.Errorf("SSM parameter %s has no Name", name)
	case t.isResource(name):
		return "<" + name + ">", nil
	}
	return nil, fmt.Errorf("undeclared %s", name)
}
