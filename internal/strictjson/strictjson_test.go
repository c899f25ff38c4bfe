package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/halosync/halosync/internal/strictjson"
)

func decode(data []byte, depth int) (any, error) {
	d := strictjson.NewDecoder(data, depth)
	v, err := d.Value()
	if err == nil {
		err = d.End()
	}
	return v, err
}

func TestValueRefuses(t *testing.T) {
	tests := []struct {
		name, in string
		kind     strictjson.Kind
	}{
		{"a key twice", `{"a":1,"a":2}`, strictjson.DuplicateKey},
		{"keys equal but for case", `{"a":1,"A":2}`, strictjson.DuplicateKey},
		{"the Kelvin sign and k", "{\"k\":1,\"\u212a\":2}", strictjson.DuplicateKey},
		{"an escaped case variant", `{"Ab":1,"\u0061b":2}`, strictjson.DuplicateKey},
		{"invalid UTF-8", "[\"\xff\"]", strictjson.InvalidUTF8},
		{"a lone high surrogate", `["\ud800"]`, strictjson.InvalidUTF8},
		{"a lone low surrogate", `["\udc00"]`, strictjson.InvalidUTF8},
		{"a high surrogate before a letter", `["\ud800\u0041"]`, strictjson.InvalidUTF8},
		{"too deep", `[[[1]]]`, strictjson.TooDeep},
		{"1e400", `[1e400]`, strictjson.NumberRange},
		{"1e-400", `[1e-400]`, strictjson.NumberRange},
		{"400 digits", "[" + strings.Repeat("9", 400) + "]", strictjson.NumberRange},
		{"a trailing comma", `[1,]`, strictjson.Syntax},
		{"a leading zero", `[01]`, strictjson.Syntax},
		{"data after the value", `{} {}`, strictjson.Syntax},
		{"a NUL after the value", "{}\x00", strictjson.Syntax},
		{"a control character in a string", "[\"\n\"]", strictjson.Syntax},
		{"a bad escape", `["\x"]`, strictjson.Syntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode([]byte(tt.in), 2)
			var se *strictjson.Error
			if !errors.As(err, &se) || se.Kind != tt.kind {
				t.Fatalf("err %v, want kind %d", err, tt.kind)
			}
		})
	}
}

// TestLargeObjectsKeepTheirChecks: past the members compared one by one, the map that takes
// over refuses the same keys.
func TestLargeObjectsKeepTheirChecks(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 40 {
		fmt.Fprintf(&b, `"k%d":{"a":%d},`, i, i)
	}
	ok := b.String() + `"last":1}`
	if v, err := decode([]byte(ok), 4); err != nil || !reflect.DeepEqual(v, std(t, []byte(ok))) {
		t.Fatalf("decode = %v", err)
	}
	for _, tail := range []string{`"k3":1}`, `"K39":1}`, `"last":1,"k0":2}`} {
		_, err := decode([]byte(b.String()+tail), 4)
		var se *strictjson.Error
		if !errors.As(err, &se) || se.Kind != strictjson.DuplicateKey {
			t.Errorf("...%s: err %v, want a duplicate key", tail, err)
		}
	}
}

func TestValueDecodesAsEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"a":[1,-2.5e3,"x\u00e9\ud83d\ude00\n",true,false,null,{}],"b":{"c":[]},"K":0,"k2":0e999}`,
		`"\"\\\/\b\f\n\r\t"`, `-0.0`, `[1e308,5e-324]`, `{"Summary":1,"summary_2":2}`,
	} {
		got, err := decode([]byte(in), 32)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if want := std(t, []byte(in)); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %#v, want %#v", in, got, want)
		}
	}
}

func std(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// FuzzValue: what Value accepts is valid JSON and valid UTF-8 that encoding/json reads to
// the same value; a syntax error is invalid JSON; Skip accepts the same syntax and spans the
// whole value.
func FuzzValue(f *testing.F) {
	for _, s := range []string{`{"a":[1,"b",{"c":null}],"d":true}`, `{"a":1,"A":2}`, `["\ud800\udc00","\ud800"]`, `[1e400]`, `"\u00e9"`, "{\"a\":\"\xff\"}", `[[[[1]]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decode(data, 8)
		valid := json.Valid(data)
		var se *strictjson.Error
		switch {
		case err == nil:
			if !valid || !utf8.Valid(data) {
				t.Fatalf("accepted %q", data)
			}
			if want := std(t, data); !reflect.DeepEqual(v, want) {
				t.Fatalf("got %#v, want %#v", v, want)
			}
		case !errors.As(err, &se):
			t.Fatalf("error of another type: %v", err)
		case se.Kind == strictjson.Syntax && valid:
			t.Fatalf("valid JSON %q refused as a syntax error", data)
		}
		d := strictjson.NewDecoder(data, 8)
		raw, err := d.Skip()
		if err == nil {
			err = d.End()
		}
		if err == nil && (!valid || !bytes.Equal(bytes.TrimSpace(data), raw)) {
			t.Fatalf("Skip accepted %q as %q", data, raw)
		}
		if err != nil && valid && !errors.As(err, &se) || err != nil && valid && se.Kind != strictjson.TooDeep {
			t.Fatalf("Skip refused valid JSON %q: %v", data, err)
		}
	})
}
