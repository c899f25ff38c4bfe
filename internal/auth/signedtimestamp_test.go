package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	whOld = "whsec_+qnFpWT8GPXkHb/bV6v3+1V+In4fQMNLAq0oAkOC5vM="
	whNew = "whsec_uXRBnNSxi1PrA34M4/E3Kli/AK7dV0aS"
	whID  = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
)

var whNow = time.Unix(1790000000, 0)

// v1 signs "<id>.<ts>.<body>" with a whsec_ secret, here with crypto/hmac directly.
func v1(tb testing.TB, secret, id, ts string, body []byte) string {
	tb.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		tb.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + string(body)))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func mustSignedTimestamp(tb testing.TB, tolerance time.Duration, secrets ...string) *SignedTimestamp {
	tb.Helper()
	s, err := NewSignedTimestamp(secrets, tolerance)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestSignedTimestamp(t *testing.T) {
	s := mustSignedTimestamp(t, 0, whOld, whNew) // the default tolerance, 300 s
	body := []byte(`{"event":"ticket updated","object_id":4242}`)
	now := strconv.FormatInt(whNow.Unix(), 10)
	at := func(d int64) string { return strconv.FormatInt(whNow.Unix()+d, 10) }
	// Well-formed signatures, valid base64 of 32 bytes, made with no configured secret.
	stranger := v1(t, "whsec_"+base64.StdEncoding.EncodeToString([]byte("not-a-configured-key-0123456789")), whID, now, body)
	sigOf := func(secret string) string { return strings.TrimPrefix(v1(t, secret, whID, now, body), "v1,") }

	tests := []struct {
		name       string
		id, ts, sg string
		body       []byte
		now        time.Time
		want       string
	}{
		{"first secret", whID, now, v1(t, whOld, whID, now, body), body, whNow, ""},
		{"second secret (rotation)", whID, now, v1(t, whNew, whID, now, body), body, whNow, ""},
		{"several signatures, one valid", whID, now, strings.Join([]string{stranger, "v2," + sigOf(whOld), v1(t, whNew, whID, now, body), "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==", stranger}, " "), body, whNow, ""},
		{"signatures signed with both secrets", whID, now, v1(t, whOld, whID, now, body) + " " + v1(t, whNew, whID, now, body), body, whNow, ""},
		{"entries apart by several blanks", whID, now, stranger + "   " + v1(t, whOld, whID, now, body) + " ", body, whNow, ""},
		{"undecodable entries beside a valid one", whID, now, "v1,!!! v1, v1 " + v1(t, whOld, whID, now, body), body, whNow, ""},
		{"empty body", whID, now, v1(t, whOld, whID, now, nil), nil, whNow, ""},
		{"300 s old, the edge", whID, at(-300), v1(t, whOld, whID, at(-300), body), body, whNow, ""},
		{"300 s ahead, the edge", whID, at(300), v1(t, whNew, whID, at(300), body), body, whNow, ""},
		{"300.999 s old by the receipt clock", whID, at(-300), v1(t, whOld, whID, at(-300), body), body, whNow.Add(999 * time.Millisecond), ""},
		{"an id with dots", "a.b.c", now, v1(t, whOld, "a.b.c", now, body), body, whNow, ""},

		{"301 s old", whID, at(-301), v1(t, whOld, whID, at(-301), body), body, whNow, ReasonTimestamp},
		{"301 s ahead", whID, at(301), v1(t, whOld, whID, at(301), body), body, whNow, ReasonTimestamp},
		{"a day old", whID, at(-86400), v1(t, whNew, whID, at(-86400), body), body, whNow, ReasonTimestamp},
		{"timestamp zero", whID, "0", v1(t, whNew, whID, "0", body), body, whNow, ReasonTimestamp},
		{"the largest int64", whID, "9223372036854775807", v1(t, whNew, whID, "9223372036854775807", body), body, whNow, ReasonTimestamp},
		{"in milliseconds", whID, now + "000", v1(t, whNew, whID, now+"000", body), body, whNow, ReasonTimestamp},

		{"wrong secret", whID, now, stranger, body, whNow, ReasonWrong},
		{"signature for another id", whID, now, v1(t, whOld, "msg_other", now, body), body, whNow, ReasonWrong},
		{"signature for another timestamp", whID, now, v1(t, whOld, whID, at(-1), body), body, whNow, ReasonWrong},
		{"tampered body, one byte", whID, now, v1(t, whOld, whID, now, body), []byte(strings.Replace(string(body), "4242", "4243", 1)), whNow, ReasonWrong},
		{"body re-serialized", whID, now, v1(t, whOld, whID, now, body), []byte(`{"object_id":4242,"event":"ticket updated"}`), whNow, ReasonWrong},
		{"signature over the body alone (the hmac scheme's)", whID, now, "v1," + base64.StdEncoding.EncodeToString(bodyMAC(mustSignedTimestamp(t, 0, whOld).keys[0], body)), body, whNow, ReasonWrong},
		{"signature keyed with the whsec_ text, not its decoded key", whID, now, "v1," + base64.StdEncoding.EncodeToString(sig(whOld, []byte(whID+"."+now+"."+string(body)))), body, whNow, ReasonWrong},
		{"a stale timestamp and a wrong signature", whID, at(-1000), stranger, body, whNow, ReasonWrong},
		{"upper-case version", whID, now, "V1," + sigOf(whOld) + " " + stranger, body, whNow, ReasonWrong},

		{"only a v2 entry", whID, now, "v2," + sigOf(whOld), body, whNow, ReasonMalformed},
		{"only a v1a entry", whID, now, "v1a," + sigOf(whOld), body, whNow, ReasonMalformed},
		{"upper-case version only", whID, now, "V1," + sigOf(whOld), body, whNow, ReasonMalformed},
		{"no version", whID, now, sigOf(whOld), body, whNow, ReasonMalformed},
		{"version with ':'", whID, now, "v1:" + sigOf(whOld), body, whNow, ReasonMalformed},
		{"empty signature", whID, now, "v1,", body, whNow, ReasonMalformed},
		{"signature not base64", whID, now, "v1,!!!", body, whNow, ReasonMalformed},
		{"unpadded signature", whID, now, strings.TrimRight(v1(t, whOld, whID, now, body), "="), body, whNow, ReasonMalformed},
		{"hex signature", whID, now, "v1," + strings.Repeat("ab", 32), body, whNow, ReasonMalformed},
		{"short signature", whID, now, "v1," + base64.StdEncoding.EncodeToString(make([]byte, 20)), body, whNow, ReasonMalformed},
		{"non-numeric timestamp", whID, "hello", v1(t, whOld, whID, "hello", body), body, whNow, ReasonMalformed},
		{"RFC 3339 timestamp", whID, "2026-09-25T06:41:08Z", v1(t, whOld, whID, "2026-09-25T06:41:08Z", body), body, whNow, ReasonMalformed},
		{"fractional timestamp", whID, now + ".5", v1(t, whOld, whID, now+".5", body), body, whNow, ReasonMalformed},
		{"signed timestamp", whID, "+" + now, v1(t, whOld, whID, "+"+now, body), body, whNow, ReasonMalformed},
		{"negative timestamp", whID, "-" + now, v1(t, whOld, whID, "-"+now, body), body, whNow, ReasonMalformed},
		{"timestamp with a blank", whID, " " + now, v1(t, whOld, whID, " "+now, body), body, whNow, ReasonMalformed},
		{"timestamp beyond int64", whID, "99999999999999999999", v1(t, whOld, whID, "99999999999999999999", body), body, whNow, ReasonMalformed},
		{"no timestamp", whID, "", v1(t, whOld, whID, "", body), body, whNow, ReasonMalformed},
		{"no id", "", now, v1(t, whOld, "", now, body), body, whNow, ReasonMalformed},

		{"no signature", whID, now, "", body, whNow, ReasonMissing},
		{"blank signature", whID, now, "   ", body, whNow, ReasonMissing},
		{"no headers", "", "", "", body, whNow, ReasonMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Request{Header: stHeaders(tt.id, tt.ts, tt.sg), Body: tt.body, Now: tt.now}
			if got := reason(t, s.Verify(r)); got != tt.want {
				t.Fatalf("Verify = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSignedTimestampTolerance(t *testing.T) {
	body := []byte(`{}`)
	for _, tc := range []struct {
		tolerance time.Duration
		offset    int64
		want      string
	}{
		{10 * time.Second, 10, ""},
		{10 * time.Second, -10, ""},
		{10 * time.Second, 11, ReasonTimestamp},
		{10 * time.Second, -11, ReasonTimestamp},
		{time.Hour, -3600, ""},
		{time.Hour, 3601, ReasonTimestamp},
		{-time.Second, -300, ""}, // zero or less: the default
		{-time.Second, -301, ReasonTimestamp},
	} {
		s := mustSignedTimestamp(t, tc.tolerance, whOld)
		ts := strconv.FormatInt(whNow.Unix()+tc.offset, 10)
		r := Request{Header: stHeaders(whID, ts, v1(t, whOld, whID, ts, body)), Body: body, Now: whNow}
		if got := reason(t, s.Verify(r)); got != tc.want {
			t.Errorf("tolerance %v, offset %d s: %q, want %q", tc.tolerance, tc.offset, got, tc.want)
		}
	}
}

// Request.Now unset means the time of the call.
func TestSignedTimestampZeroNowIsTheClock(t *testing.T) {
	s := mustSignedTimestamp(t, 0, whOld)
	body := []byte(`{}`)
	for _, tc := range []struct {
		offset int64
		want   string
	}{{0, ""}, {-3600, ReasonTimestamp}, {3600, ReasonTimestamp}} {
		ts := strconv.FormatInt(time.Now().Unix()+tc.offset, 10)
		r := Request{Header: stHeaders(whID, ts, v1(t, whOld, whID, ts, body)), Body: body}
		if got := reason(t, s.Verify(r)); got != tc.want {
			t.Errorf("offset %d s: %q, want %q", tc.offset, got, tc.want)
		}
	}
}

// The spec names the webhook-* headers only; Svix's own svix-* spelling is not read.
func TestSignedTimestampIgnoresSvixHeaders(t *testing.T) {
	s := mustSignedTimestamp(t, 0, whOld)
	body := []byte(`{}`)
	now := strconv.FormatInt(whNow.Unix(), 10)
	r := Request{Header: map[string]string{"svix-id": whID, "svix-timestamp": now, "svix-signature": v1(t, whOld, whID, now, body)}, Body: body, Now: whNow}
	if got := reason(t, s.Verify(r)); got != ReasonMissing {
		t.Fatalf("svix headers: %q, want %q", got, ReasonMissing)
	}
}

func TestNewSignedTimestamp(t *testing.T) {
	bare := strings.TrimPrefix(whOld, "whsec_")
	s := mustSignedTimestamp(t, 0, bare, whNew)
	body := []byte(`{}`)
	now := strconv.FormatInt(whNow.Unix(), 10)
	if err := s.Verify(Request{Header: stHeaders(whID, now, v1(t, whOld, whID, now, body)), Body: body, Now: whNow}); err != nil {
		t.Fatalf("a secret without whsec_: %v", err)
	}
	for _, bad := range []string{"whsec_not base64!", "whsec_" + strings.TrimRight(bare, "="), "whsec_", "", "whsec_" + base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xfe})} {
		_, err := NewSignedTimestamp([]string{whOld, bad}, 0)
		if err == nil {
			t.Errorf("secret %q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "secrets[1]") || (bad != "" && bad != "whsec_" && strings.Contains(err.Error(), bad)) || strings.Contains(err.Error(), bare) {
			t.Errorf("secret %q: error %q should name secrets[1] and hold no secret", bad, err)
		}
	}
}

func FuzzSignedTimestamp(f *testing.F) {
	v := loadVectors(f)
	// The vectors signed at 1790000000 and 1790000300 fall inside the window at whNow.
	secrets := []string{v.SignedTimestamp[1].Secret, v.SignedTimestamp[2].Secret}
	for _, vec := range v.SignedTimestamp {
		ts := strconv.FormatInt(vec.Timestamp, 10)
		f.Add(vec.ID, ts, vec.Signature, []byte(vec.Body))
		f.Add(vec.ID, ts, "v2,x "+vec.Signature+" v1a,y", []byte(vec.Body))
		f.Add(vec.ID+".", ts, vec.Signature, []byte(vec.Body))
	}
	f.Add("", "", "", []byte(nil))
	f.Add("a", "-1", "v1,", []byte("{}"))
	s := mustSignedTimestamp(f, 0, secrets...)
	keys := s.keys
	f.Fuzz(func(t *testing.T, id, ts, sigs string, body []byte) {
		r := Request{Header: stHeaders(id, ts, sigs), Body: body, Now: whNow}
		err := s.Verify(r)
		checkReason(t, err)
		if err == nil {
			// Accepted: the id is there, the timestamp is decimal digits within 300 s, and
			// an entry is exactly "v1," and the standard base64 of a key's MAC.
			n, perr := strconv.ParseInt(ts, 10, 64)
			if id == "" || perr != nil || strings.TrimLeft(ts, "0123456789") != "" || n < whNow.Unix()-300 || n > whNow.Unix()+300 {
				t.Fatalf("accepted id %q timestamp %q", id, ts)
			}
			var want []string
			for _, k := range keys {
				m := hmac.New(sha256.New, k)
				m.Write([]byte(id + "." + ts + "." + string(body)))
				want = append(want, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
			}
			found := false
			for _, e := range strings.Fields(sigs) {
				found = found || slices.Contains(want, e)
			}
			if !found {
				t.Fatalf("accepted signatures %q for id %q timestamp %q body %q", sigs, id, ts, body)
			}
		}
		// A right signature, made now, is accepted for any non-empty id and any body.
		if id != "" {
			now := strconv.FormatInt(whNow.Unix(), 10)
			for i, sec := range secrets {
				r := Request{Header: stHeaders(id, now, v1(t, sec, id, now, body)), Body: body, Now: whNow}
				if err := s.Verify(r); err != nil {
					t.Fatalf("secret %d: right signature for id %q body %q refused: %v", i, id, body, err)
				}
			}
		}
	})
}
