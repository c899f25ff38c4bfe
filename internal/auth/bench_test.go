package auth

import (
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkVerify measures each scheme accepting a delivery with two secrets configured,
// the matching one last (every secret is tried every time in any case), on a 2 KB and a
// 50 KB body. Only hmac and signed-timestamp read the body.
func BenchmarkVerify(b *testing.B) {
	now := strconv.FormatInt(whNow.Unix(), 10)
	for _, size := range []struct {
		name string
		n    int
	}{{"2KB", 2 << 10}, {"50KB", 50 << 10}} {
		body := benchBody(size.n)
		cases := []struct {
			name string
			s    Scheme
			r    Request
		}{ // the body-reading schemes report MB/s of body
			{"basic", NewBasic(user, []string{password, next}),
				Request{Header: map[string]string{"authorization": basicHeader(user, next)}}},
			{"header", NewHeaderToken("Authorization", "Bearer ", []string{tokenOld, tokenNew}),
				Request{Header: map[string]string{"authorization": "Bearer " + tokenNew}}},
			{"hmac", mustHMAC(b, "Token", "", "base64", hmacOld, hmacNew),
				Request{Header: map[string]string{"token": base64.StdEncoding.EncodeToString(sig(hmacNew, body))}}},
			{"hmac-hex", mustHMAC(b, "X-Hub-Signature-256", "sha256=", "hex", hmacOld, hmacNew),
				Request{Header: map[string]string{"x-hub-signature-256": "sha256=" + hex.EncodeToString(sig(hmacNew, body))}}},
			{"signed-timestamp", mustSignedTimestamp(b, 0, whOld, whNew),
				Request{Header: stHeaders(whID, now, v1(b, whNew, whID, now, body))}},
			{"path-secret", NewPathSecret([]string{pathOld, pathNew}), Request{PathSecret: pathNew}},
		}
		for _, c := range cases {
			c.r.Body, c.r.Now = body, whNow
			b.Run(c.name+"/"+size.name, func(b *testing.B) {
				if err := c.s.Verify(c.r); err != nil {
					b.Fatal(err)
				}
				if strings.HasPrefix(c.name, "hmac") || c.name == "signed-timestamp" {
					b.SetBytes(int64(len(body)))
				}
				b.ReportAllocs()
				for b.Loop() {
					if err := c.s.Verify(c.r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// benchBody is a JSON body of exactly n bytes, shaped like a Halo ticket event.
func benchBody(n int) []byte {
	head := `{"id":"3f0c9a52-1b7e-4d2a-9c61-7a0e5b2d8f11","event":"ticket updated","object_id":4242,"ticket":{"details":"`
	tail := `"}}`
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}
