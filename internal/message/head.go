package message

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendHead appends the envelope as encoding/json writes it, without its raw event and
// its closing brace, for a change without fields (they travel in the raw event, or there
// are none): what every webhook's message begins with, written without reflection. ok is
// false for an envelope it leaves to encoding/json: fields, or a time not in UTC or beyond
// year 9999.
func appendHead(b []byte, e Envelope) (_ []byte, ok bool) {
	c := e.Change
	if c.Fields != nil || !plainTime(c.OccurredAt) || !plainTime(e.ReceivedAt) {
		return b, false
	}
	b = appendMember(b, `{"change":{"connection":`, c.Connection)
	b = appendMember(b, `,"kind":`, string(c.Kind))
	b = appendMember(b, `,"id":`, c.ID)
	if c.ParentID != "" {
		b = appendMember(b, `,"parent_id":`, c.ParentID)
	}
	b = appendMember(b, `,"op":`, string(c.Op))
	b = strconv.AppendInt(append(b, `,"version":`...), c.Version, 10)
	b = appendMember(b, `,"version_from":`, c.VersionFrom)
	b = appendTime(append(b, `,"occurred_at":`...), c.OccurredAt)
	b = appendMember(b, `,"source":`, string(c.Source))
	for _, m := range []struct{ key, value string }{{`,"delivery_id":`, c.DeliveryID}, {`,"event":`, c.Event}, {`,"endpoint":`, c.Endpoint}} {
		if m.value != "" {
			b = appendMember(b, m.key, m.value)
		}
	}
	if len(c.Attributes) > 0 {
		b = append(b, `,"attributes":{`...)
		for i, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range c.Attributes {
				if !yield(k) {
					return
				}
			}
		}) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendMember(appendString(b, k), ":", c.Attributes[k])
		}
		b = append(b, '}')
	}
	if c.Repairs != 0 {
		b = strconv.AppendInt(append(b, `,"repairs":`...), c.Repairs, 10)
	}
	if c.Backfill {
		b = append(b, `,"backfill":true`...)
	}
	b = append(b, '}')
	if e.Unknown {
		b = append(b, `,"unknown":true`...)
	}
	if e.RawOmitted {
		b = append(b, `,"raw_omitted":true`...)
	}
	if e.FieldsInRaw != "" {
		b = appendMember(b, `,"fields_in_raw":`, e.FieldsInRaw)
	}
	return appendTime(append(b, `,"received_at":`...), e.ReceivedAt), true
}

// plainTime: a time encoding/json writes as RFC 3339 in UTC, with a Z.
func plainTime(t time.Time) bool {
	_, offset := t.Zone()
	return offset == 0 && t.Year() >= 0 && t.Year() <= 9999
}

func appendTime(b []byte, t time.Time) []byte {
	return append(t.AppendFormat(append(b, '"'), time.RFC3339Nano), '"')
}

func appendMember(b []byte, prefix, value string) []byte {
	return appendString(append(b, prefix...), value)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string as encoding/json writes it: HTML's <, > and &
// escaped, invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(b, s[start:]...), '"')
}
