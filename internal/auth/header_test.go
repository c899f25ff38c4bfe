package auth

import (
	"slices"
	"strings"
	"testing"
)

const (
	tokenOld = "tok-2f9c1e7a5b"
	tokenNew = "tok-8d3b6a0c4e"
)

func TestHeaderToken(t *testing.T) {
	bearer := NewHeaderToken("Authorization", "Bearer ", []string{tokenOld, tokenNew})
	apiKey := NewHeaderToken("X-Api-Key", "", []string{tokenOld, tokenNew})
	tests := []struct {
		name   string
		s      *HeaderToken
		header map[string]string
		want   string
	}{
		{"bearer, first token", bearer, map[string]string{"authorization": "Bearer " + tokenOld}, ""},
		{"bearer, second token (rotation)", bearer, map[string]string{"authorization": "Bearer " + tokenNew}, ""},
		{"lower-case bearer", bearer, map[string]string{"authorization": "bearer " + tokenOld}, ""},
		{"upper-case bearer", bearer, map[string]string{"authorization": "BEARER " + tokenNew}, ""},
		{"mixed-case bearer", bearer, map[string]string{"authorization": "bEaReR " + tokenNew}, ""},
		{"no prefix configured", apiKey, map[string]string{"x-api-key": tokenOld}, ""},
		{"no prefix configured, second token", apiKey, map[string]string{"x-api-key": tokenNew}, ""},

		{"wrong token", bearer, map[string]string{"authorization": "Bearer tok-0000000000"}, ReasonWrong},
		{"token differing in case", bearer, map[string]string{"authorization": "Bearer " + strings.ToUpper(tokenOld)}, ReasonWrong},
		{"token prefix", bearer, map[string]string{"authorization": "Bearer " + tokenOld[:len(tokenOld)-1]}, ReasonWrong},
		{"token with a suffix", bearer, map[string]string{"authorization": "Bearer " + tokenOld + "x"}, ReasonWrong},
		{"two blanks before the token", bearer, map[string]string{"authorization": "Bearer  " + tokenOld}, ReasonWrong},
		{"blank after the token", bearer, map[string]string{"authorization": "Bearer " + tokenOld + " "}, ReasonWrong},
		{"tab after the token", bearer, map[string]string{"authorization": "Bearer " + tokenOld + "\t"}, ReasonWrong},
		{"both tokens", bearer, map[string]string{"authorization": "Bearer " + tokenOld + tokenNew}, ReasonWrong},
		{"both tokens, comma-separated", bearer, map[string]string{"authorization": "Bearer " + tokenOld + "," + tokenNew}, ReasonWrong},
		{"blank before the key", apiKey, map[string]string{"x-api-key": " " + tokenOld}, ReasonWrong},
		{"bearer where no prefix is configured", apiKey, map[string]string{"x-api-key": "Bearer " + tokenOld}, ReasonWrong},

		{"basic credentials", bearer, map[string]string{"authorization": basicHeader(user, password)}, ReasonMalformed},
		{"no prefix", bearer, map[string]string{"authorization": tokenOld}, ReasonMalformed},
		{"tab for the prefix blank", bearer, map[string]string{"authorization": "Bearer\t" + tokenOld}, ReasonMalformed},
		{"prefix without its blank", bearer, map[string]string{"authorization": "Bearer" + tokenOld}, ReasonMalformed},
		{"non-ASCII letter folding to the prefix", NewHeaderToken("Authorization", "Token ", []string{tokenOld}), map[string]string{"authorization": "To\u212Aen " + tokenOld}, ReasonMalformed},

		{"bearer alone", bearer, map[string]string{"authorization": "Bearer"}, ReasonMissing},
		{"bearer and a blank", bearer, map[string]string{"authorization": "Bearer "}, ReasonMissing},
		{"empty header", bearer, map[string]string{"authorization": ""}, ReasonMissing},
		{"no header", bearer, map[string]string{}, ReasonMissing},
		{"nil header map", bearer, nil, ReasonMissing},
		{"token in another header", apiKey, map[string]string{"authorization": tokenOld}, ReasonMissing},
		{"header key not lower-case", apiKey, map[string]string{"X-Api-Key": tokenOld}, ReasonMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reason(t, tt.s.Verify(Request{Header: tt.header})); got != tt.want {
				t.Fatalf("Verify = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHeaderTokenWithoutTokensRefusesAll(t *testing.T) {
	h := NewHeaderToken("X-Api-Key", "", []string{""})
	for _, v := range []string{"x", tokenOld, " "} {
		if got := reason(t, h.Verify(Request{Header: map[string]string{"x-api-key": v}})); got != ReasonWrong {
			t.Errorf("%q: %q, want %q", v, got, ReasonWrong)
		}
	}
}

func FuzzHeader(f *testing.F) {
	v := loadVectors(f)
	tokens := []string{v.HMAC[0].Secret, v.HMAC[1].Secret}
	for _, vec := range v.HMAC {
		f.Add("Bearer "+vec.Secret, vec.Secret)
		f.Add("bearer  "+vec.Secret, vec.Secret+" ")
	}
	f.Add("Bearer", "")
	f.Add("Basic aGFsbzpmaXJzdC1zZWNyZXQ=", "Bearer ")
	h := NewHeaderToken("Authorization", "Bearer ", tokens)
	f.Fuzz(func(t *testing.T, value, token string) {
		// A raw header is accepted only if it is the prefix, in any case, then a token.
		err := h.Verify(Request{Header: map[string]string{"authorization": value}})
		checkReason(t, err)
		if err == nil && (len(value) < 7 || !strings.EqualFold(value[:7], "Bearer ") || !slices.Contains(tokens, value[7:])) {
			t.Fatalf("accepted %q", value)
		}
		// "Bearer <token>" is accepted exactly when the token is configured.
		err = h.Verify(Request{Header: map[string]string{"authorization": "Bearer " + token}})
		if right := slices.Contains(tokens, token); right != (err == nil) {
			t.Fatalf("token %q: accepted %v, right %v (%v)", token, err == nil, right, err)
		}
		if err != nil && token != "" && reason(t, err) != ReasonWrong {
			t.Fatalf("token %q: %q, want %q", token, reason(t, err), ReasonWrong)
		}
	})
}
