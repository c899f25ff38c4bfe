// Package strictjson decodes JSON in one pass that also refuses what encoding/json would
// read but not faithfully (docs/ARCHITECTURE.md, "Ingest", step 9): invalid UTF-8 and \u
// escapes naming a lone surrogate (encoding/json replaces either with U+FFFD), duplicate
// keys and keys equal but for case (encoding/json keeps the last, and matches struct fields
// without regard to case), numbers a float64 cannot hold, and nesting beyond a depth.
// Values decode as encoding/json decodes into an interface with UseNumber: map[string]any,
// []any, string, json.Number, bool and nil.
package strictjson

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Kind is what an Error found.
type Kind int

// The kinds of error, in no order of precedence: a Decoder stops at the first it meets.
const (
	Syntax Kind = iota + 1
	InvalidUTF8
	TooDeep
	DuplicateKey
	NumberRange
)

// Error says why the input is refused.
type Error struct {
	Kind   Kind
	Detail string
}

func (e *Error) Error() string { return e.Detail }

func fail(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Detail: fmt.Sprintf(format, args...)}
}

var errSyntax = &Error{Kind: Syntax, Detail: "the body is not valid JSON"}

// A Decoder reads values from one input. Its methods read the next value; Value checks
// everything the package refuses, Skip only the syntax and the depth.
type Decoder struct {
	data     []byte
	pos      int
	depth    int
	maxDepth int
	scratch  []byte // a string's bytes while its escapes are replaced
	*stacks         // while Value decodes, from stackPool
}

// stacks hold the members and elements of the objects and arrays being decoded, innermost
// last; kept for the next decoder, so that decoding allocates only what it returns.
type stacks struct {
	members  []member
	elements []any
}

var stackPool = sync.Pool{New: func() any { return new(stacks) }}

// NewDecoder reads data, refusing nesting deeper than maxDepth containers.
func NewDecoder(data []byte, maxDepth int) *Decoder {
	return &Decoder{data: data, maxDepth: maxDepth}
}

// Offset is where the decoder is in its input: after the last value read, or at the next
// value's first byte after Peek.
func (d *Decoder) Offset() int { return d.pos }

// Peek skips white space and returns the next value's first byte, 0 at the end (or at a
// NUL byte, which no value starts with).
func (d *Decoder) Peek() byte {
	for d.pos < len(d.data) {
		switch c := d.data[d.pos]; c {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return c
		}
	}
	return 0
}

// End checks that nothing but white space follows.
func (d *Decoder) End() error {
	if d.Peek(); d.pos < len(d.data) {
		return errSyntax
	}
	return nil
}

// Value decodes the next value.
func (d *Decoder) Value() (any, error) {
	if d.stacks != nil {
		return d.value()
	}
	d.stacks = stackPool.Get().(*stacks)
	v, err := d.value()
	// Decoded containers cleared their part of the stacks; a failed one left its own.
	clear(d.members)
	clear(d.elements)
	d.members, d.elements = d.members[:0], d.elements[:0]
	if cap(d.members)+cap(d.elements) <= maxPooled {
		stackPool.Put(d.stacks)
	}
	d.stacks = nil
	return v, err
}

// maxPooled bounds the stacks kept for the next decoder: a huge array's are let go.
const maxPooled = 1 << 12

func (d *Decoder) value() (any, error) {
	switch c := d.Peek(); c {
	case '{':
		return d.object()
	case '[':
		return d.array()
	case '"':
		return d.String()
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.literal("null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			n, err := d.Number()
			return json.Number(n), err
		}
		return nil, errSyntax
	}
}

// Object reads the next value, which must be an object, calling fn with each key; fn
// reads the key's value (Value, Skip, Object, Array). Keys are checked as Value checks
// them.
func (d *Decoder) Object(fn func(key string) error) error {
	if d.Peek() != '{' {
		return errSyntax
	}
	if err := d.enter(); err != nil {
		return err
	}
	seen := map[string]any{}
	var folds map[string]string
	if d.Peek() == '}' {
		return d.leave()
	}
	for {
		key, err := d.key()
		if err != nil {
			return err
		}
		if folds, err = checkKey(seen, folds, key); err != nil {
			return err
		}
		seen[key] = nil
		if err := fn(key); err != nil {
			return err
		}
		if done, err := d.next('}'); done || err != nil {
			return err
		}
	}
}

// Array reads the next value, which must be an array, calling fn with each element's
// index; fn reads the element.
func (d *Decoder) Array(fn func(i int) error) error {
	if d.Peek() != '[' {
		return errSyntax
	}
	if err := d.enter(); err != nil {
		return err
	}
	if d.Peek() == ']' {
		return d.leave()
	}
	for i := 0; ; i++ {
		if err := fn(i); err != nil {
			return err
		}
		if done, err := d.next(']'); done || err != nil {
			return err
		}
	}
}

// enter steps into the container at pos.
func (d *Decoder) enter() error {
	if d.depth == d.maxDepth {
		return fail(TooDeep, "nested deeper than %d levels", d.maxDepth)
	}
	d.depth++
	d.pos++
	return nil
}

// leave steps out of a container at its closing byte.
func (d *Decoder) leave() error {
	d.depth--
	d.pos++
	return nil
}

// next moves past the comma between two members or elements (false), or the container's
// closing byte (true).
func (d *Decoder) next(closing byte) (bool, error) {
	switch d.Peek() {
	case ',':
		d.pos++
		return false, nil
	case closing:
		return true, d.leave()
	}
	return false, errSyntax
}

// key reads an object's key and the colon after it.
func (d *Decoder) key() (string, error) {
	if d.Peek() != '"' {
		return "", errSyntax
	}
	key, err := d.String()
	if err != nil {
		return "", err
	}
	if d.Peek() != ':' {
		return "", errSyntax
	}
	d.pos++
	return key, nil
}

// smallObject is how many members an object's keys are compared one by one for; a map
// takes over beyond.
const smallObject = 32

// object decodes an object. Its members gather on the decoder's stack until it closes, so
// that its map is made once at its size; a larger object, or one with a key that needs
// folding, goes on in its map.
func (d *Decoder) object() (map[string]any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	if d.Peek() == '}' {
		return map[string]any{}, d.leave()
	}
	mark := len(d.members)
	var m map[string]any
	var folds map[string]string
	for {
		key, err := d.key()
		if err != nil {
			return nil, err
		}
		if m == nil && (len(d.members)-mark == smallObject || !plain(key)) {
			m = d.popMembers(mark, smallObject)
		}
		if m != nil {
			folds, err = checkKey(m, folds, key)
		} else {
			err = checkSmall(d.members[mark:], key)
		}
		if err != nil {
			return nil, err
		}
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		if m != nil {
			m[key] = v
		} else {
			d.members = append(d.members, member{key, v})
		}
		if done, err := d.next('}'); err != nil || done {
			if m == nil {
				m = d.popMembers(mark, 0)
			}
			return m, err
		}
	}
}

// member is a key and its value, of an object being decoded.
type member struct {
	key string
	val any
}

// popMembers moves the members above mark into a map with room for extra more.
func (d *Decoder) popMembers(mark, extra int) map[string]any {
	top := d.members[mark:]
	m := make(map[string]any, len(top)+extra)
	for _, kv := range top {
		m[kv.key] = kv.val
	}
	clear(top)
	d.members = d.members[:mark]
	return m
}

// checkSmall refuses a plain key (no letter to fold) that the members, all plain, hold.
func checkSmall(members []member, key string) error {
	for _, kv := range members {
		if kv.key == key {
			return fail(DuplicateKey, "key %q appears twice in one object", truncate(key, 40))
		}
	}
	return nil
}

func (d *Decoder) array() ([]any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	if d.Peek() == ']' {
		return []any{}, d.leave()
	}
	mark := len(d.elements)
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.elements = append(d.elements, v)
		if done, err := d.next(']'); err != nil || done {
			top := d.elements[mark:]
			out := append(make([]any, 0, len(top)), top...)
			clear(top)
			d.elements = d.elements[:mark]
			return out, err
		}
	}
}

// checkKey refuses a key the object already holds, or one equal to another but for case
// as encoding/json folds keys to match struct fields. Keys of lower-case ASCII cannot
// collide but exactly, so the folded keys are kept (folds) only from the first key that
// holds an upper-case or non-ASCII letter.
func checkKey(m map[string]any, folds map[string]string, key string) (map[string]string, error) {
	if folds == nil && !plain(key) {
		folds = make(map[string]string, len(m)+1)
		for k := range m {
			folds[foldKey(k)] = k
		}
	}
	if folds == nil {
		if _, dup := m[key]; dup {
			return nil, fail(DuplicateKey, "key %q appears twice in one object", truncate(key, 40))
		}
		return nil, nil
	}
	folded := foldKey(key)
	if first, dup := folds[folded]; dup {
		if first == key {
			return folds, fail(DuplicateKey, "key %q appears twice in one object", truncate(key, 40))
		}
		return folds, fail(DuplicateKey, "keys %q and %q differ only in case", truncate(first, 40), truncate(key, 40))
	}
	folds[folded] = key
	return folds, nil
}

// plain reports whether a key holds neither upper-case ASCII letters nor non-ASCII bytes.
func plain(key string) bool {
	for i := 0; i < len(key); i++ {
		if c := key[i]; 'A' <= c && c <= 'Z' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// foldKey folds a key as encoding/json does when it matches a key to a struct field: ASCII
// letters to upper case, other runes through unicode.ToUpper(unicode.ToLower(r)), so "K"
// and the Kelvin sign meet too.
func foldKey(key string) string {
	out := make([]byte, 0, len(key))
	for _, r := range key {
		if r < utf8.RuneSelf {
			c := byte(r)
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			continue
		}
		out = utf8.AppendRune(out, unicode.ToUpper(unicode.ToLower(r)))
	}
	return string(out)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (d *Decoder) literal(word string) error {
	if len(d.data)-d.pos < len(word) || string(d.data[d.pos:d.pos+len(word)]) != word {
		return errSyntax
	}
	d.pos += len(word)
	return nil
}

// Number reads the next value, which must be a number, and returns it as written.
func (d *Decoder) Number() (string, error) {
	d.Peek()
	text, exp, err := d.numberBytes()
	if err != nil {
		return "", err
	}
	// Without an exponent, only a number of hundreds of digits can leave a float64's
	// range (beyond 1.8e308, or below 4.9e-324 but not zero).
	if exp || len(text) > 300 {
		if err := checkRange(text); err != nil {
			return "", err
		}
	}
	return string(text), nil
}

// numberBytes reads a number's bytes, following JSON's grammar.
func (d *Decoder) numberBytes() (text []byte, exp bool, err error) {
	data, i := d.data, d.pos
	start := i
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		i = digits(data, i)
	default:
		return nil, false, errSyntax
	}
	if i < len(data) && data[i] == '.' {
		if i++; i == len(data) || !isDigit(data[i]) {
			return nil, false, errSyntax
		}
		i = digits(data, i)
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		exp = true
		if i++; i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i == len(data) || !isDigit(data[i]) {
			return nil, false, errSyntax
		}
		i = digits(data, i)
	}
	d.pos = i
	return data[start:i], exp, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digits(data []byte, i int) int {
	for i < len(data) && isDigit(data[i]) {
		i++
	}
	return i
}

// checkRange refuses a number a float64 cannot hold: readers would see infinity (1e400),
// or zero for a number that is not (1e-400).
func checkRange(n []byte) error {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f == 0 && nonZeroMantissa(n) {
		return fail(NumberRange, "the number %s is out of range", truncate(string(n), 40))
	}
	return nil
}

func nonZeroMantissa(n []byte) bool {
	for _, c := range n {
		switch {
		case c == 'e' || c == 'E':
			return false
		case '1' <= c && c <= '9':
			return true
		}
	}
	return false
}

// String reads the next value, which must be a string.
func (d *Decoder) String() (string, error) {
	b, err := d.stringBytes(true)
	return string(b), err
}

// plainByte marks the ASCII bytes a string holds as they are: not a quote, a backslash or
// a control character.
var plainByte = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// stringBytes reads a string at pos and returns its bytes, escapes replaced (in scratch,
// valid until the next string). check: refuse invalid UTF-8 and lone surrogates.
func (d *Decoder) stringBytes(check bool) ([]byte, error) {
	data := d.data
	if d.pos >= len(data) || data[d.pos] != '"' {
		return nil, errSyntax
	}
	start := d.pos + 1
	i, err := plainRun(data, start, check)
	if err != nil {
		return nil, err
	}
	if i < len(data) && data[i] == '"' {
		d.pos = i + 1
		return data[start:i], nil
	}
	out := append(d.scratch[:0], data[start:i]...)
	for {
		if i >= len(data) || data[i] < 0x20 {
			return nil, errSyntax
		}
		if data[i] == '"' {
			d.pos, d.scratch = i+1, out
			return out, nil
		}
		// A backslash.
		if i+1 >= len(data) {
			return nil, errSyntax
		}
		switch c := data[i+1]; c {
		case '"', '\\', '/':
			out = append(out, c)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n, err := unicodeEscape(data, i, check)
			if err != nil {
				return nil, err
			}
			out = utf8.AppendRune(out, r)
			i += n - 2
		default:
			return nil, errSyntax
		}
		i += 2
		j, err := plainRun(data, i, check)
		if err != nil {
			return nil, err
		}
		out = append(out, data[i:j]...)
		i = j
	}
}

// plainRun returns where the run of bytes a string holds as they are, from i, ends: at a
// quote, a backslash, a control character or the end.
func plainRun(data []byte, i int, check bool) (int, error) {
	for i < len(data) {
		c := data[i]
		if c < utf8.RuneSelf {
			if !plainByte[c] {
				return i, nil
			}
			i++
			continue
		}
		if !check {
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return i, fail(InvalidUTF8, "the body is not valid UTF-8")
		}
		i += size
	}
	return i, nil
}

// unicodeEscape reads the \u escape at data[i] (the backslash): its rune and its length, a
// surrogate pair's two escapes together. check: a surrogate must be a high one followed
// by an escaped low one; else U+FFFD stands for it, as encoding/json reads it.
func unicodeEscape(data []byte, i int, check bool) (rune, int, error) {
	r, ok := hex4(data, i+2)
	if !ok {
		return 0, 0, errSyntax
	}
	if !utf16.IsSurrogate(r) {
		return r, 6, nil
	}
	if r < 0xDC00 && i+11 < len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
		lo, ok := hex4(data, i+8)
		if ok && 0xDC00 <= lo && lo <= 0xDFFF {
			return utf16.DecodeRune(r, lo), 12, nil
		}
	}
	if check {
		return 0, 0, fail(InvalidUTF8, "a \\u escape names a lone surrogate, which UTF-8 cannot hold")
	}
	return utf8.RuneError, 6, nil
}

// hex4 reads four hex digits at data[i].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// Skip reads the next value without decoding it and returns its bytes. It checks the
// syntax and the depth only: not keys, UTF-8 or numbers' range.
func (d *Decoder) Skip() ([]byte, error) {
	start := d.Peek()
	from := d.pos
	var err error
	switch {
	case start == '{' || start == '[':
		err = d.skipContainer()
	case start == '"':
		_, err = d.stringBytes(false)
	case start == 't':
		err = d.literal("true")
	case start == 'f':
		err = d.literal("false")
	case start == 'n':
		err = d.literal("null")
	case start == '-' || isDigit(start):
		_, _, err = d.numberBytes()
	default:
		err = errSyntax
	}
	if err != nil {
		return nil, err
	}
	return d.data[from:d.pos], nil
}

func (d *Decoder) skipContainer() error {
	object := d.data[d.pos] == '{'
	closing := byte(']')
	if object {
		closing = '}'
	}
	if err := d.enter(); err != nil {
		return err
	}
	if d.Peek() == closing {
		return d.leave()
	}
	for {
		if object {
			if d.Peek() != '"' {
				return errSyntax
			}
			if _, err := d.stringBytes(false); err != nil {
				return err
			}
			if d.Peek() != ':' {
				return errSyntax
			}
			d.pos++
		}
		if _, err := d.Skip(); err != nil {
			return err
		}
		if done, err := d.next(closing); done || err != nil {
			return err
		}
	}
}

// Bytes is the input from start to where the decoder is.
func (d *Decoder) Bytes(start int) []byte { return d.data[start:d.pos] }
