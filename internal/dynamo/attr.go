package dynamo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/halosync/halosync/internal/change"
)

// maxDepth is DynamoDB's limit on nested attribute values (maps and lists).
const maxDepth = 32

// errEmptyName: DynamoDB rejects a map key that is the empty string ("Empty attribute
// name"), at any depth.
var errEmptyName = fmt.Errorf("%w: a field named \"\" cannot be stored in DynamoDB", change.ErrInvalid)

// marshalFields turns an object's fields into a DynamoDB map, each value in its native
// DynamoDB type (see marshalValue).
func marshalFields(fields map[string]any) (*types.AttributeValueMemberM, error) {
	m := make(map[string]types.AttributeValue, len(fields))
	for k, v := range fields {
		if k == "" {
			return nil, errEmptyName
		}
		av, err := marshalValue(v, 1)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", k, err)
		}
		m[k] = av
	}
	return &types.AttributeValueMemberM{Value: m}, nil
}

// marshalValue converts one decoded JSON value to a DynamoDB attribute value: string S
// (empty allowed), json.Number N exactly as written, Go numbers N, bool BOOL, nil NULL,
// map M, slice L. Any other type goes through its JSON form. Values DynamoDB cannot hold
// (a number beyond its 38 digits, NaN, nesting deeper than 32, a map key "") are
// change.ErrInvalid.
func marshalValue(v any, depth int) (types.AttributeValue, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested deeper than DynamoDB's %d levels", change.ErrInvalid, maxDepth)
	}
	switch x := v.(type) {
	case nil:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case string:
		return &types.AttributeValueMemberS{Value: x}, nil
	case bool:
		return &types.AttributeValueMemberBOOL{Value: x}, nil
	case json.Number:
		if err := checkNumber(string(x)); err != nil {
			return nil, err
		}
		return &types.AttributeValueMemberN{Value: string(x)}, nil
	case float64:
		return floatValue(x)
	case float32:
		return floatValue(float64(x))
	case int:
		return &types.AttributeValueMemberN{Value: strconv.Itoa(x)}, nil
	case int64:
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(x, 10)}, nil
	case int32:
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(int64(x), 10)}, nil
	case uint64:
		return &types.AttributeValueMemberN{Value: strconv.FormatUint(x, 10)}, nil
	case map[string]any:
		m := make(map[string]types.AttributeValue, len(x))
		for k, e := range x {
			if k == "" {
				return nil, errEmptyName
			}
			av, err := marshalValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = av
		}
		return &types.AttributeValueMemberM{Value: m}, nil
	case []any:
		l := make([]types.AttributeValue, len(x))
		for i, e := range x {
			av, err := marshalValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			l[i] = av
		}
		return &types.AttributeValueMemberL{Value: l}, nil
	case json.RawMessage:
		return marshalJSON(x, depth)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("%w: value of type %T: %w", change.ErrInvalid, v, err)
		}
		return marshalJSON(b, depth)
	}
}

// marshalJSON converts a JSON document, numbers kept as written.
func marshalJSON(b []byte, depth int) (types.AttributeValue, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: unreadable JSON value: %w", change.ErrInvalid, err)
	}
	return marshalValue(v, depth)
}

func floatValue(f float64) (types.AttributeValue, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%w: number %v", change.ErrInvalid, f)
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if err := checkNumber(s); err != nil {
		return nil, err
	}
	return &types.AttributeValueMemberN{Value: s}, nil
}

// checkNumber accepts a JSON number DynamoDB can store: at most 38 significant digits,
// magnitude from 1e-130 to below 1e126.
func checkNumber(s string) error {
	if s == "" || !json.Valid([]byte(s)) || !(s[0] == '-' || isDigit(s[0])) || !isDigit(s[len(s)-1]) {
		return fmt.Errorf("%w: %q is not a number", change.ErrInvalid, s)
	}
	mant, exp := strings.TrimPrefix(s, "-"), 0
	if i := strings.IndexAny(mant, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(mant[i+1:], "+"))
		if err != nil {
			return fmt.Errorf("%w: number %q has an unreadable exponent", change.ErrInvalid, s)
		}
		mant, exp = mant[:i], e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+frac, "0")
	// The value is 0.digits × 10^pointExp once leading zeros are gone.
	pointExp := exp + len(intPart) - (len(intPart) + len(frac) - len(digits))
	digits = strings.TrimRight(digits, "0")
	if digits == "" {
		return nil // zero
	}
	if len(digits) > 38 {
		return fmt.Errorf("%w: number %q has more than the 38 significant digits DynamoDB keeps", change.ErrInvalid, s)
	}
	// value = 0.d1d2... × 10^pointExp, so its magnitude is in [10^(pointExp-1), 10^pointExp).
	if pointExp > 126 || pointExp-1 < -130 {
		return fmt.Errorf("%w: number %q is out of DynamoDB's range (1e-130 to 1e126)", change.ErrInvalid, s)
	}
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// unmarshalFields reads a stored fields map back; a missing map is an empty one.
func unmarshalFields(av types.AttributeValue) (map[string]any, error) {
	m, ok := av.(*types.AttributeValueMemberM)
	if av == nil || !ok {
		if av == nil {
			return map[string]any{}, nil
		}
		return nil, fmt.Errorf("fields attribute is %T, not a map", av)
	}
	out := make(map[string]any, len(m.Value))
	for k, v := range m.Value {
		x, err := unmarshalValue(v)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", k, err)
		}
		out[k] = x
	}
	return out, nil
}

// unmarshalValue is marshalValue's inverse: N becomes json.Number, so a number comes back
// as DynamoDB returns it (see the package doc on how AWS trims zeros).
func unmarshalValue(av types.AttributeValue) (any, error) {
	switch x := av.(type) {
	case *types.AttributeValueMemberNULL:
		return nil, nil
	case *types.AttributeValueMemberS:
		return x.Value, nil
	case *types.AttributeValueMemberN:
		return json.Number(x.Value), nil
	case *types.AttributeValueMemberBOOL:
		return x.Value, nil
	case *types.AttributeValueMemberM:
		m := make(map[string]any, len(x.Value))
		for k, e := range x.Value {
			v, err := unmarshalValue(e)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case *types.AttributeValueMemberL:
		l := make([]any, len(x.Value))
		for i, e := range x.Value {
			v, err := unmarshalValue(e)
			if err != nil {
				return nil, err
			}
			l[i] = v
		}
		return l, nil
	case *types.AttributeValueMemberB:
		return x.Value, nil
	case *types.AttributeValueMemberSS:
		l := make([]any, len(x.Value))
		for i, s := range x.Value {
			l[i] = s
		}
		return l, nil
	case *types.AttributeValueMemberNS:
		l := make([]any, len(x.Value))
		for i, s := range x.Value {
			l[i] = json.Number(s)
		}
		return l, nil
	case *types.AttributeValueMemberBS:
		l := make([]any, len(x.Value))
		for i, b := range x.Value {
			l[i] = b
		}
		return l, nil
	default:
		return nil, fmt.Errorf("unsupported attribute value %T", av)
	}
}
