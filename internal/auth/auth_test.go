package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/config"
)

const (
	user     = "halo"
	password = "first-secret"
	next     = "next-secret"
)

func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func req(h string) Request {
	return Request{Header: map[string]string{"authorization": h}, Body: []byte(`{"event":"ticket updated"}`)}
}

// reason returns "" for nil, else the *Error's reason; it fails on other errors.
func reason(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("error %v does not match ErrUnauthenticated", err)
	}
	return ae.Reason
}

func TestBasic(t *testing.T) {
	b := NewBasic(user, []string{password, next})
	tests := []struct {
		name string
		r    Request
		want string // "" accepts
	}{
		{"first password", req(basicHeader(user, password)), ""},
		{"second password (rotation)", req(basicHeader(user, next)), ""},
		{"lower-case scheme", req("basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))), ""},
		{"extra blanks", req("  Basic   " + base64.StdEncoding.EncodeToString([]byte(user+":"+next)) + "  "), ""},
		{"wrong user", req(basicHeader("halo2", password)), ReasonWrong},
		{"user differing in case", req(basicHeader("Halo", password)), ReasonWrong},
		{"wrong password", req(basicHeader(user, "third-secret")), ReasonWrong},
		{"password prefix", req(basicHeader(user, "first-secre")), ReasonWrong},
		{"password with suffix", req(basicHeader(user, password+"x")), ReasonWrong},
		{"empty password", req(basicHeader(user, "")), ReasonWrong},
		{"empty user and password", req(basicHeader("", "")), ReasonWrong},
		{"passwords swapped into the user", req(basicHeader(password, user)), ReasonWrong},
		{"no header", Request{Header: map[string]string{}}, ReasonMissing},
		{"nil header map", Request{}, ReasonMissing},
		{"empty header", req(""), ReasonMissing},
		{"bearer token", req("Bearer x"), ReasonMissing},
		{"bearer carrying the basic credentials", req("Bearer " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))), ReasonMissing},
		{"scheme only", req("Basic"), ReasonMissing},
		{"header key not lower-case", Request{Header: map[string]string{"Authorization": basicHeader(user, password)}}, ReasonMissing},
		{"bad base64", req("Basic !!!not-base64!!!"), ReasonMalformed},
		{"base64 missing padding", req("Basic " + strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("halo:first-secre")), "=")), ReasonMalformed},
		{"url-safe base64 alphabet", req("Basic " + base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff})), ReasonMalformed},
		{"no colon", req("Basic " + base64.StdEncoding.EncodeToString([]byte(user+password))), ReasonMalformed},
		{"scheme and blank only", req("Basic "), ReasonMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reason(t, b.Verify(tt.r)); got != tt.want {
				t.Fatalf("Verify = %q, want %q", got, tt.want)
			}
		})
	}
}

// RFC 7617: the user-id cannot hold a colon but the password can.
func TestBasicPasswordWithColon(t *testing.T) {
	b := NewBasic(user, []string{"pass:with:colons"})
	if err := b.Verify(req(basicHeader(user, "pass:with:colons"))); err != nil {
		t.Fatalf("password with colons refused: %v", err)
	}
	if got := reason(t, b.Verify(req(basicHeader(user, "pass")))); got != ReasonWrong {
		t.Fatalf("password before the colon: %q, want %q", got, ReasonWrong)
	}
}

func TestBasicWithoutPasswordsRefusesAll(t *testing.T) {
	b := NewBasic(user, nil)
	for _, p := range []string{"", "x", password} {
		if got := reason(t, b.Verify(req(basicHeader(user, p)))); got != ReasonWrong {
			t.Errorf("password %q: %q, want %q", p, got, ReasonWrong)
		}
	}
}

func TestErrorHoldsNoSecret(t *testing.T) {
	b := NewBasic(user, []string{password, next})
	for _, h := range []string{basicHeader(user, "wrong-pass"), basicHeader("other", password), "Basic %%%", ""} {
		err := b.Verify(req(h))
		if err == nil {
			t.Fatalf("%q accepted", h)
		}
		msg := err.Error()
		for _, s := range []string{password, next, "wrong-pass", "other"} {
			if strings.Contains(msg, s) {
				t.Errorf("error %q contains %q", msg, s)
			}
		}
		if !strings.HasPrefix(msg, "unauthenticated: ") {
			t.Errorf("error %q", msg)
		}
	}
	if errors.Is(errors.New("unauthenticated"), ErrUnauthenticated) {
		t.Fatal("an unrelated error matches ErrUnauthenticated")
	}
}

type fixed struct{ err error }

func (f fixed) Verify(Request) error { return f.err }

func TestVerifierPicksTheMostTellingReason(t *testing.T) {
	missing := fixed{&Error{Reason: ReasonMissing}}
	malformed := fixed{&Error{Reason: ReasonMalformed}}
	wrong := fixed{&Error{Reason: ReasonWrong}}
	stale := fixed{&Error{Reason: ReasonTimestamp}}
	accept := fixed{nil}
	other := fixed{errors.New("boom")}
	tests := []struct {
		name string
		v    Verifier
		want string
	}{
		{"no schemes", Verifier{}, ReasonMissing},
		{"missing only", Verifier{missing}, ReasonMissing},
		{"malformed over missing", Verifier{missing, malformed}, ReasonMalformed},
		{"malformed over missing, other order", Verifier{malformed, missing}, ReasonMalformed},
		{"wrong over all", Verifier{missing, wrong, malformed}, ReasonWrong},
		{"wrong first", Verifier{wrong, malformed, missing}, ReasonWrong},
		{"timestamp over wrong", Verifier{wrong, stale, malformed}, ReasonTimestamp},
		{"timestamp first", Verifier{stale, wrong, missing}, ReasonTimestamp},
		{"timestamp over missing", Verifier{missing, stale}, ReasonTimestamp},
		{"acceptance over timestamp", Verifier{stale, accept}, ""},
		{"any acceptance wins", Verifier{wrong, malformed, accept}, ""},
		{"acceptance first", Verifier{accept, wrong}, ""},
		{"a non-*Error failure counts as missing", Verifier{other}, ReasonMissing},
		{"a non-*Error failure does not hide a reason", Verifier{other, malformed}, ReasonMalformed},
		{"a wrapped *Error is understood", Verifier{fixed{errorsJoin(&Error{Reason: ReasonWrong})}}, ReasonWrong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reason(t, tt.v.Verify(req("x"))); got != tt.want {
				t.Fatalf("Verify = %q, want %q", got, tt.want)
			}
		})
	}
}

func errorsJoin(err error) error { return errors.Join(errors.New("context"), err) }

func TestVerifierWithBasicSchemes(t *testing.T) {
	v := Verifier{NewBasic("halo-a", []string{"secret-a-1"}), NewBasic("halo-b", []string{"secret-b-1", "secret-b-2"})}
	tests := []struct {
		name string
		h    string
		want string
	}{
		{"first scheme", basicHeader("halo-a", "secret-a-1"), ""},
		{"second scheme, rotated password", basicHeader("halo-b", "secret-b-2"), ""},
		{"user of one scheme, password of the other", basicHeader("halo-a", "secret-b-1"), ReasonWrong},
		{"malformed", "Basic ???", ReasonMalformed},
		{"missing", "", ReasonMissing},
	}
	for _, tt := range tests {
		if got := reason(t, v.Verify(req(tt.h))); got != tt.want {
			t.Errorf("%s: Verify = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestNew(t *testing.T) {
	v, err := New([]config.AuthScheme{
		{Scheme: "basic", Username: user, Passwords: []string{password, next}},
		{Scheme: "basic", Username: "relay", Passwords: []string{"relay-secret"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 2 {
		t.Fatalf("%d schemes, want 2", len(v))
	}
	for _, h := range []string{basicHeader(user, password), basicHeader(user, next), basicHeader("relay", "relay-secret")} {
		if err := v.Verify(req(h)); err != nil {
			t.Errorf("refused %q: %v", h, err)
		}
	}
	if got := reason(t, v.Verify(req(basicHeader("relay", password)))); got != ReasonWrong {
		t.Errorf("cross credentials: %q", got)
	}

	_, err = New([]config.AuthScheme{{Scheme: "basic", Username: user, Passwords: []string{password}}, {Scheme: "oauth"}})
	if err == nil || !strings.Contains(err.Error(), "auth[1]") || !strings.Contains(err.Error(), `"oauth"`) {
		t.Fatalf("unknown scheme: err = %v, want it to name auth[1] and \"oauth\"", err)
	}
	if _, err := New([]config.AuthScheme{{Scheme: "Basic", Username: user, Passwords: []string{password}}}); err == nil {
		t.Fatal("scheme names are exact: \"Basic\" accepted")
	}
	v, err = New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := reason(t, v.Verify(req(basicHeader(user, password)))); got != ReasonMissing {
		t.Fatalf("no schemes: %q, want every delivery refused as missing", got)
	}
}

func FuzzBasic(f *testing.F) {
	for _, s := range []struct{ h, u, p string }{
		{basicHeader(user, password), user, password},
		{basicHeader(user, next), user, next},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password+"\n")), user, password + "\x00"},
		{"Bearer x", "", ""},
		{"Basic !!", "halo:", "first"},
		{"basic aGFsbzpmaXJzdC1zZWNyZXQ=", "HALO", "first-secret "},
	} {
		f.Add(s.h, s.u, s.p)
	}
	b := NewBasic(user, []string{password, next})
	f.Fuzz(func(t *testing.T, header, u, p string) {
		// A raw header is accepted only if it carries exactly the credentials.
		err := b.Verify(req(header))
		if err == nil {
			scheme, encoded, _ := strings.Cut(strings.TrimSpace(header), " ")
			raw, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
			creds := string(raw)
			if !strings.EqualFold(scheme, "basic") || derr != nil || (creds != user+":"+password && creds != user+":"+next) {
				t.Fatalf("accepted header %q carrying %q", header, creds)
			}
		} else if r := reason(t, err); r != ReasonMissing && r != ReasonMalformed && r != ReasonWrong {
			t.Fatalf("unknown reason %q", r)
		}
		// Well-formed credentials are accepted exactly when they are right.
		err = b.Verify(req(basicHeader(u, p)))
		right := u == user && (p == password || p == next)
		if right != (err == nil) {
			t.Fatalf("user %q password %q: accepted %v, right %v (%v)", u, p, err == nil, right, err)
		}
		if err != nil && !strings.Contains(u, ":") && reason(t, err) != ReasonWrong {
			t.Fatalf("user %q password %q: reason %q, want %q", u, p, reason(t, err), ReasonWrong)
		}
	})
}
