package change

import (
	"encoding/json"
	"testing"
)

func TestParseID(t *testing.T) {
	cases := []struct {
		in      any
		want    string
		wantErr bool
	}{
		{nil, "", false},
		{"", "", false},
		{json.Number("12"), "12", false},
		{json.Number("0"), "0", false},
		{json.Number("12.0"), "12", false},
		{json.Number("12.000"), "12", false},
		{"12", "12", false},
		{"0012", "12", false},
		{"12.0", "12", false},
		{"9223372036854775807", "9223372036854775807", false},
		{"5c1f0a7e-8a4b-4f1e-9d7a-2b6c3e9f1a01", "5c1f0a7e-8a4b-4f1e-9d7a-2b6c3e9f1a01", false},
		{"msg_2", "msg_2", false},
		// Spellings that would alias another id.
		{json.Number("-0"), "", true},
		{json.Number("-12"), "", true},
		{json.Number("1e3"), "", true},
		{json.Number("1E3"), "", true},
		{json.Number("12.5"), "", true},
		{json.Number("1e400"), "", true},
		{json.Number("9223372036854775808"), "", true},
		{json.Number("9007199254740993.0"), "9007199254740993", false},
		{"-0", "", true},
		{"+12", "", true},
		{"1e3", "", true},
		{" 12", "", true},
		{"12 ", "", true},
		{" ", "", true},
		{"12.", "", true},
		{".5", "", true},
		{"12.5", "", true},
		{"NaN", "", true},
		{"inf", "", true},
		{"0x1p3", "", true},
		{"9223372036854775808", "", true},
		{"1e400", "", true},
		{12.0, "", true},
		{true, "", true},
	}
	for _, tc := range cases {
		got, err := ParseID(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseID(%#v) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
