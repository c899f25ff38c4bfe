package auth

import (
	"slices"
	"testing"
)

const (
	pathOld = "p7Kx2mQ9vL4sT8wZ"
	pathNew = "Rn5cY1hJ6bD3fG0a"
)

func TestPathSecret(t *testing.T) {
	p := NewPathSecret([]string{pathOld, pathNew})
	for _, tt := range []struct {
		name, secret, want string
	}{
		{"first secret", pathOld, ""},
		{"second secret (rotation)", pathNew, ""},
		{"wrong secret", "x7Kx2mQ9vL4sT8wZ", ReasonWrong},
		{"differing in case", "P7KX2MQ9VL4ST8WZ", ReasonWrong},
		{"a prefix of a secret", pathOld[:15], ReasonWrong},
		{"a secret with a suffix", pathOld + "/", ReasonWrong},
		{"both secrets", pathOld + pathNew, ReasonWrong},
		{"a blank", " ", ReasonWrong},
		{"empty", "", ReasonMissing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Headers carrying a secret do not count: the path does.
			r := Request{PathSecret: tt.secret, Header: map[string]string{"authorization": "Bearer " + pathOld}}
			if got := reason(t, p.Verify(r)); got != tt.want {
				t.Fatalf("Verify = %q, want %q", got, tt.want)
			}
		})
	}
	if got := reason(t, NewPathSecret([]string{""}).Verify(Request{PathSecret: "x"})); got != ReasonWrong {
		t.Fatalf("no secrets: %q, want %q", got, ReasonWrong)
	}
}

func FuzzPathSecret(f *testing.F) {
	v := loadVectors(f)
	secrets := []string{v.HMAC[0].Secret, v.HMAC[1].Secret}
	for _, vec := range v.HMAC {
		f.Add(vec.Secret)
		f.Add(vec.Secret + "\x00")
	}
	f.Add("")
	p := NewPathSecret(secrets)
	f.Fuzz(func(t *testing.T, s string) {
		err := p.Verify(Request{PathSecret: s})
		if right := slices.Contains(secrets, s); right != (err == nil) {
			t.Fatalf("%q: accepted %v, right %v (%v)", s, err == nil, right, err)
		}
		if want := map[bool]string{true: ReasonMissing, false: ReasonWrong}[s == ""]; err != nil && reason(t, err) != want {
			t.Fatalf("%q: %q, want %q", s, reason(t, err), want)
		}
	})
}
