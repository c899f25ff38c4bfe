package change

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ParseID reads an id from a webhook delivery, where a sender chooses the spelling: a
// non-negative integer written plainly, as a JSON number (12) or a string of digits
// ("12", and Halo's zero-padded "0012"); a whole number written with a zero fraction
// (12.0, "12.0") is read the same way, since Halo's custom payloads and relays write ids
// so (docs/HALO.md, "Field rules"). All are stored as "12". The digits are read as text,
// never through a float, so no two different integers meet. A string that is not a number
// at all (a GUID) is kept exactly as given. Anything else that reads as a number (a sign,
// an exponent, a fraction, blanks, NaN, more than an int64 holds) is refused: "-0", "1e3"
// or " 12" would name an id under another spelling. nil and "" are no id.
//
// CanonicalID stays the lenient reading for ids halosync compares rather than stores
// (filters) and for what Halo's API returns.
func ParseID(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		if x == "" {
			return "", nil
		}
		if id, ok := plainInteger(x); ok {
			return id, nil
		}
		if numberLike(x) {
			return "", fmt.Errorf("id %q is not a plain non-negative integer", truncateID(x))
		}
		return x, nil
	case json.Number:
		if id, ok := plainInteger(string(x)); ok {
			return id, nil
		}
		return "", fmt.Errorf("id %s is not a plain non-negative integer", truncateID(string(x)))
	default:
		return "", fmt.Errorf("id of type %T", v)
	}
}

// plainInteger reads digits, optionally followed by a fraction of zeros, that fit an
// int64, and returns them without leading zeros.
func plainInteger(s string) (string, bool) {
	digits, frac, hasFrac := strings.Cut(s, ".")
	if digits == "" || !allBytes(digits, '0', '9') || (hasFrac && (frac == "" || !allBytes(frac, '0', '0'))) {
		return "", false
	}
	i, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return "", false
	}
	return strconv.FormatInt(i, 10), true
}

func allBytes(s string, lo, hi byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < lo || s[i] > hi {
			return false
		}
	}
	return true
}

// numberLike reports whether a string would be read as a number by a lenient reader:
// anything strconv parses as a float (out of range included), or blanks around text.
func numberLike(s string) bool {
	if strings.TrimSpace(s) != s {
		return true
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil || errors.Is(err, strconv.ErrRange)
}

func truncateID(s string) string {
	if len(s) <= 40 {
		return s
	}
	return s[:40] + "…"
}
