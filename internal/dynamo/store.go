// Package dynamo is the object store on DynamoDB: one table (docs/ARCHITECTURE.md, "Data
// model"), written with conditional updates so that applying a change behaves exactly
// like change.Apply, normally in one UpdateItem per change with no read first; delivery
// records and cursors are one PutItem each; a kind's ids are read from GSI2.
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/halosync/halosync/internal/change"
)

// Table layout, shared with CreateTable and with template.yaml.
const (
	AttrPartitionKey = "pk"         // table partition key (S)
	AttrSortKey      = "sk"         // table sort key (S)
	AttrGSI1PK       = "gsi1pk"     // by-client index partition key (S)
	AttrGSI1SK       = "gsi1sk"     // by-client index sort key (S)
	AttrGSI2PK       = "gsi2pk"     // by-kind index partition key (S)
	AttrGSI2SK       = "gsi2sk"     // by-kind index sort key (S)
	AttrGSI3PK       = "gsi3pk"     // by-change index partition key (S)
	AttrGSI3SK       = "gsi3sk"     // by-change index sort key (S)
	AttrExpiresAt    = "expires_at" // TTL attribute (N, Unix seconds) of expiring items
	IndexGSI1        = "GSI1"       // the by-client index
	IndexGSI2        = "GSI2"       // the by-kind index
	IndexGSI3        = "GSI3"       // the by-change index: what changed of a kind, in write order
)

// GSI2Projected are the attributes GSI2 projects beside the keys (INCLUDE).
var GSI2Projected = []string{attrDeleted, attrParentID}

// Object item attributes.
const (
	attrConn     = "conn"
	attrKind     = "kind"
	attrID       = "id"
	attrParentID = "parent_id"
	attrVersion  = "version"
	attrPending  = "pending_version"
	attrDeleted  = "deleted"
	attrFields   = "fields"
	attrClientID = "client_id"
	attrSyncedAt = "synced_at"
	attrSource   = "source"
	attrDelivery = "delivery_id"
	attrEvent    = "event"
)

// Delivery record attributes (beside conn, kind, id, parent_id, version, delivery_id,
// event and source above).
const (
	attrOp             = "op"
	attrOutcome        = "outcome"
	attrReason         = "reason"
	attrEndpoint       = "endpoint"
	attrCreated        = "created"
	attrChangesUnknown = "changes_unknown"
	attrChanged        = "changed"
	attrSummary        = "summary"
	attrReceivedAt     = "received_at"
	attrProcessedAt    = "processed_at"
)

// maxExpression is DynamoDB's limit on the length of an update expression. Placeholders
// are short and assignments unspaced ("#0.#a1=:a1,"), so about 350 fields fit in one.
const maxExpression = 4096

// maxAttempts bounds the writes of one Apply. A change needs at most three (merge, create
// on a new object, merge again after losing the creation race); more means some other
// writer keeps changing the item in ways this store never does.
const maxAttempts = 6

// API is the part of the DynamoDB client the store uses; *dynamodb.Client satisfies it.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Store is the object store on one DynamoDB table. It is safe for concurrent use.
type Store struct {
	client   API
	table    string
	now      func() time.Time
	pageSize int32 // StoredIDs' Query limit; 0: DynamoDB's 1 MB pages
}

// New returns the store on table.
func New(client API, table string) *Store {
	return &Store{client: client, table: table, now: time.Now}
}

// Open returns the store on table through a DynamoDB client made from cfg.
func Open(cfg aws.Config, table string) *Store { return New(dynamodb.NewFromConfig(cfg), table) }

// form is one shape of conditional write.
type form int

const (
	formMerge   form = iota // SET fields.#k = :v ...; the object has a fields map
	formCreate              // SET fields = :all; the object has none (usually: no item)
	formRewrite             // SET fields = :merged, computed in Go from a read
	formTouch               // no field to write: fields = if_not_exists(fields, :empty)
	formPending             // event only: pending_version
	formRepair              // SET fields = :all at a lower version, while the version seen is stored
)

// Apply writes c as change.Apply describes and says what it did, with the previous values
// of the fields an applied change carries. A change that can never be applied (invalid,
// or holding values DynamoDB cannot store) is change.ErrInvalid.
func (s *Store) Apply(ctx context.Context, c change.Change) (change.Result, error) {
	var none change.Result
	if err := c.Validate(); err != nil {
		return none, err
	}
	key := itemKey(c.Connection, c.Kind, c.ID, c.ParentID)
	var fields *types.AttributeValueMemberM
	if len(c.Fields) > 0 {
		var err error
		if fields, err = marshalFields(c.Fields); err != nil {
			return none, fmt.Errorf("dynamo: apply %s: %w", describe(c), err)
		}
	}
	now := s.now().UTC()

	var f form
	switch {
	case c.Repairs != 0:
		f = formRepair
	case c.Op == change.OpUpsert && !c.HasSnapshot():
		f = formPending
	case fields == nil:
		f = formTouch
	default:
		f = formMerge
	}
	var old map[string]types.AttributeValue // the item as last seen, nil when none
	sawNoItem := false
	for range maxAttempts {
		in, err := s.update(f, key, c, fields, old, now)
		if errors.Is(err, errTooLong) {
			// Too many fields for one expression: merge in Go from the item as stored.
			f = formRewrite
			if old == nil {
				if old, err = s.getItem(ctx, key); err != nil {
					return none, fmt.Errorf("dynamo: apply %s: %w", describe(c), err)
				}
			}
			if old == nil {
				f = formCreate
			}
			in, err = s.update(f, key, c, fields, old, now)
		}
		if err != nil {
			return none, fmt.Errorf("dynamo: apply %s: %w", describe(c), err)
		}
		if in == nil { // formRewrite found the outcome in the item it read
			_, o, err := decide(old, c, now)
			if err != nil {
				return none, fmt.Errorf("dynamo: apply %s: %w", describe(c), err)
			}
			return change.Result{Outcome: o}, nil
		}
		out, err := s.client.UpdateItem(ctx, in)
		if err == nil {
			res, err := s.result(f, old, out.Attributes, c, now)
			if err != nil {
				return none, fmt.Errorf("dynamo: apply %s: written, but %w", describe(c), err)
			}
			return res, nil
		}
		var failed *types.ConditionalCheckFailedException
		if !errors.As(err, &failed) {
			return none, fmt.Errorf("dynamo: apply %s: update item: %w", describe(c), err)
		}
		old = failed.Item
		if len(old) == 0 {
			old = nil
			// DynamoDB returns no item when there is none. A second time in one Apply is
			// unexpected enough to check by reading (a stand-in without ALL_OLD support).
			if sawNoItem {
				if old, err = s.getItem(ctx, key); err != nil {
					return none, fmt.Errorf("dynamo: apply %s: %w", describe(c), err)
				}
			}
			sawNoItem = true
		}
		hasFields, o, err := decide(old, c, now)
		if err != nil {
			return none, fmt.Errorf("dynamo: apply %s: %w", describe(c), err)
		}
		if o == change.Duplicate || o == change.Stale {
			return change.Result{Outcome: o}, nil
		}
		// The item changed under us (or does not exist yet): try the form that fits it.
		switch {
		case f == formPending || f == formTouch || f == formRepair:
		case hasFields:
			f = formMerge // or formRewrite again, from this fresher item
		default:
			f = formCreate
		}
	}
	return none, fmt.Errorf("dynamo: apply %s: the item kept changing during %d conditional writes", describe(c), maxAttempts)
}

// result is what a successful write of form f did: the previous values come from the
// item read (formRewrite) or from the attributes the update returned (UPDATED_OLD).
func (s *Store) result(f form, read, returned map[string]types.AttributeValue, c change.Change, now time.Time) (change.Result, error) {
	switch f {
	case formPending:
		return change.Result{Outcome: change.Pending}, nil
	case formRewrite:
		stored, err := decodeItem(read)
		if err != nil {
			return change.Result{}, err
		}
		_, res := change.Apply(&stored, c, now)
		return res, nil
	}
	previous, err := previousValues(returned, c)
	if err != nil {
		return change.Result{}, err
	}
	return change.Result{Outcome: change.Applied, Previous: previous}, nil
}

// previousValues reads change.Result.Previous from the attributes an update returned with
// UPDATED_OLD: no version (no item) or version 0 (a pending marker) means the object had
// no stored state; else each field of the change found under fields had that value.
func previousValues(old map[string]types.AttributeValue, c change.Change) (map[string]any, error) {
	if v, err := getN(old, attrVersion); err != nil || v == 0 {
		return nil, err
	}
	previous := make(map[string]any, len(c.Fields))
	fields, _ := old[attrFields].(*types.AttributeValueMemberM)
	if fields == nil {
		return previous, nil
	}
	for k := range c.Fields {
		if av, ok := fields.Value[k]; ok {
			v, err := unmarshalValue(av)
			if err != nil {
				return nil, fmt.Errorf("previous value of field %q: %w", k, err)
			}
			previous[k] = v
		}
	}
	return previous, nil
}

// decide applies the reference rule to the stored item: what c would do to it, and
// whether the item has a fields map.
func decide(item map[string]types.AttributeValue, c change.Change, now time.Time) (hasFields bool, o change.Outcome, err error) {
	if len(item) == 0 {
		_, r := change.Apply(nil, c, now)
		return false, r.Outcome, nil
	}
	stored, err := decodeItem(item)
	if err != nil {
		return false, "", err
	}
	_, hasFields = item[attrFields].(*types.AttributeValueMemberM)
	_, r := change.Apply(&stored, c, now)
	return hasFields, r.Outcome, nil
}

// errTooLong says a field-by-field update expression would pass DynamoDB's limit.
var errTooLong = errors.New("update expression too long")

// update builds the conditional UpdateItem of form f. For formRewrite it returns nil when
// the read item already decides the outcome.
func (s *Store) update(f form, key map[string]types.AttributeValue, c change.Change, fields *types.AttributeValueMemberM, old map[string]types.AttributeValue, now time.Time) (*dynamodb.UpdateItemInput, error) {
	var e exprBuilder
	pFields, pVersion := e.name(attrFields), e.name(attrVersion)
	vVersion := e.value(num(c.Version))
	newer := fmt.Sprintf("(attribute_not_exists(%s) OR %s < %s)", pVersion, pVersion, vVersion)
	// Identity: constant for a key, written every time so a new item is complete.
	e.set(attrConn, str(c.Connection))
	e.set(attrKind, str(string(c.Kind)))
	e.set(attrID, str(c.ID))
	if c.ParentID != "" {
		e.set(attrParentID, str(c.ParentID))
	}
	// The by-kind index, constant for a key too: every state write puts the item in it.
	e.set(AttrGSI2PK, str(change.KindIndexKey(c.Connection, c.Kind)))
	e.set(AttrGSI2SK, str(change.KindIndexSort(c.Kind, c.ID, c.ParentID)))

	if f == formPending {
		pPending := e.name(attrPending)
		e.sets = append(e.sets,
			pPending+" = "+vVersion,
			fmt.Sprintf("%s = if_not_exists(%s, %s)", pFields, pFields, e.value(&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}})),
			fmt.Sprintf("%s = if_not_exists(%s, %s)", pVersion, pVersion, e.value(num(0))),
		)
		pDeleted := e.name(attrDeleted)
		e.sets = append(e.sets, fmt.Sprintf("%s = if_not_exists(%s, %s)", pDeleted, pDeleted, e.value(&types.AttributeValueMemberBOOL{Value: false})))
		cond := newer + fmt.Sprintf(" AND (attribute_not_exists(%s) OR %s < %s)", pPending, pPending, vVersion)
		return e.input(s.table, key, cond), nil
	}

	// Every other form applies the change: version, tombstone flag and metadata.
	e.sets = append(e.sets, pVersion+"="+vVersion)
	e.set(attrDeleted, &types.AttributeValueMemberBOOL{Value: c.Op == change.OpDelete})
	e.set(attrSyncedAt, str(now.Format(time.RFC3339Nano)))
	// The by-change index moves the item to its write time.
	e.set(AttrGSI3PK, str(change.ChangedIndexKey(c.Connection, c.Kind)))
	e.set(AttrGSI3SK, str(change.ChangedIndexSort(now, c.Kind, c.ID, c.ParentID)))
	e.setOrRemove(attrSource, string(c.Source))
	e.setOrRemove(attrDelivery, c.DeliveryID)
	e.setOrRemove(attrEvent, c.Event)
	if id := c.ClientID(); id != "" {
		e.set(attrClientID, str(id))
		e.set(AttrGSI1PK, str(change.ClientIndexKey(c.Connection, id)))
		e.set(AttrGSI1SK, str(change.ClientIndexSort(c.Kind, c.ID)))
	}

	var cond string
	switch f {
	case formTouch:
		e.sets = append(e.sets, fmt.Sprintf("%s = if_not_exists(%s, %s)", pFields, pFields, e.value(&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}})))
		cond = newer
	case formMerge:
		for k, v := range fields.Value {
			e.sets = append(e.sets, pFields+"."+e.name(k)+"="+e.value(v))
		}
		cond = fmt.Sprintf("attribute_exists(%s) AND %s", pFields, newer)
	case formCreate:
		e.sets = append(e.sets, pFields+" = "+e.value(fields))
		cond = fmt.Sprintf("attribute_not_exists(%s) AND %s", pFields, newer)
	case formRepair:
		if fields == nil {
			fields = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}
		}
		e.sets = append(e.sets, pFields+" = "+e.value(fields))
		e.removes = append(e.removes, e.name(attrPending))
		cond = fmt.Sprintf("%s = %s", pVersion, e.value(num(c.Repairs)))
	case formRewrite:
		stored, err := decodeItem(old)
		if err != nil {
			return nil, err
		}
		next, r := change.Apply(&stored, c, now)
		if r.Outcome != change.Applied {
			return nil, nil
		}
		merged, err := marshalFields(next.Fields)
		if err != nil {
			return nil, err
		}
		e.sets = append(e.sets, pFields+" = "+e.value(merged))
		// Unchanged since the read: every write of fields also raises the version.
		if v, ok := old[attrVersion]; ok {
			cond = fmt.Sprintf("%s = %s", pVersion, e.value(v))
		} else {
			cond = fmt.Sprintf("attribute_exists(%s) AND attribute_not_exists(%s)", e.name(AttrPartitionKey), pVersion)
		}
	}
	in := e.input(s.table, key, cond)
	if f == formMerge && len(*in.UpdateExpression) > maxExpression {
		return nil, errTooLong
	}
	if f != formRewrite { // a rewrite knows the old values from its read
		in.ReturnValues = types.ReturnValueUpdatedOld
	}
	return in, nil
}

// Get returns the stored state of an object; ok is false when nothing is stored.
// The read is strongly consistent.
func (s *Store) Get(ctx context.Context, conn string, kind change.Kind, id, parentID string) (change.Object, bool, error) {
	item, err := s.getItem(ctx, itemKey(conn, kind, id, parentID))
	if err != nil {
		return change.Object{}, false, fmt.Errorf("dynamo: get %s %s %s: %w", conn, kind, id, err)
	}
	if item == nil {
		return change.Object{}, false, nil
	}
	o, err := decodeItem(item)
	if err != nil {
		return change.Object{}, false, fmt.Errorf("dynamo: get %s %s %s: %w", conn, kind, id, err)
	}
	return o, true, nil
}

// ListByClient returns the objects of one client (its tickets, contacts and assets, and
// the client itself) from the by-client index, tombstones included (Deleted set), in
// index order (kind, then id as a string). The index is eventually consistent in AWS.
func (s *Store) ListByClient(ctx context.Context, conn, clientID string) ([]change.Object, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(IndexGSI1),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": AttrGSI1PK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(change.ClientIndexKey(conn, clientID))},
	}
	var out []change.Object
	for {
		page, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamo: list client %s %s: %w", conn, clientID, err)
		}
		for _, item := range page.Items {
			o, err := decodeItem(item)
			if err != nil {
				return nil, fmt.Errorf("dynamo: list client %s %s: %w", conn, clientID, err)
			}
			out = append(out, o)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// Changed returns up to limit objects of kind in conn whose by-change key
// (change.ChangedIndexSort: when the store wrote them, then their id) sorts above after,
// ascending, from the by-change index GSI3: what changed since a position, in write order.
// Pending markers, never written, are not in the index; tombstones are. The index is
// eventually consistent in AWS: a write shows in it a moment after it is made.
func (s *Store) Changed(ctx context.Context, conn string, kind change.Kind, after string, limit int) ([]change.Object, error) {
	if err := change.ValidateChangedListing(conn, kind, after, limit); err != nil {
		return nil, err
	}
	in := &dynamodb.QueryInput{
		TableName:                aws.String(s.table),
		IndexName:                aws.String(IndexGSI3),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk > :after"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrGSI3PK, "#sk": AttrGSI3SK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(change.ChangedIndexKey(conn, kind)), ":after": str(after),
		},
	}
	if after == "" { // DynamoDB refuses an empty string in a key condition
		in.KeyConditionExpression = aws.String("#pk = :pk")
		delete(in.ExpressionAttributeValues, ":after")
		delete(in.ExpressionAttributeNames, "#sk")
	}
	out := make([]change.Object, 0, limit)
	for {
		in.Limit = aws.Int32(int32(limit - len(out)))
		page, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamo: list %s %s changed after %q: %w", conn, kind, after, err)
		}
		for _, item := range page.Items {
			o, err := decodeItem(item)
			if err != nil {
				return nil, fmt.Errorf("dynamo: list %s %s changed after %q: %w", conn, kind, after, err)
			}
			out = append(out, o)
		}
		if len(page.LastEvaluatedKey) == 0 || len(out) >= limit {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

func (s *Store) getItem(ctx context.Context, key map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get item: %w", err)
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return out.Item, nil
}

func itemKey(conn string, kind change.Kind, id, parentID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrPartitionKey: str(change.PartitionKey(conn, kind, id, parentID)),
		AttrSortKey:      str(change.SortKey(kind, id)),
	}
}

// decodeItem reads an object item.
func decodeItem(item map[string]types.AttributeValue) (change.Object, error) {
	fields, err := unmarshalFields(item[attrFields])
	if err != nil {
		return change.Object{}, err
	}
	o := change.Object{
		Connection: getS(item, attrConn),
		Kind:       change.Kind(getS(item, attrKind)),
		ID:         getS(item, attrID),
		ParentID:   getS(item, attrParentID),
		Fields:     fields,
		ClientID:   getS(item, attrClientID),
		Source:     change.Source(getS(item, attrSource)),
		DeliveryID: getS(item, attrDelivery),
		Event:      getS(item, attrEvent),
	}
	if o.Version, err = getN(item, attrVersion); err != nil {
		return change.Object{}, err
	}
	if o.PendingVersion, err = getN(item, attrPending); err != nil {
		return change.Object{}, err
	}
	if b, ok := item[attrDeleted].(*types.AttributeValueMemberBOOL); ok {
		o.Deleted = b.Value
	}
	if s := getS(item, attrSyncedAt); s != "" {
		if o.SyncedAt, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return change.Object{}, fmt.Errorf("attribute %s: %w", attrSyncedAt, err)
		}
	}
	return o, nil
}

func getS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(item map[string]types.AttributeValue, name string) (int64, error) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %s: %w", name, err)
	}
	return n, nil
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func describe(c change.Change) string {
	s := c.Connection + " " + string(c.Kind) + " " + c.ID
	if c.ParentID != "" {
		s += " (of " + c.ParentID + ")"
	}
	return s + " v" + strconv.FormatInt(c.Version, 10)
}

// exprBuilder collects an update expression with every attribute name and value behind a
// placeholder (#0, :0, ...), so any field name (dots, #, colons, spaces, reserved words)
// is safe.
type exprBuilder struct {
	names   map[string]string // placeholder -> name
	nameOf  map[string]string // name -> placeholder
	values  map[string]types.AttributeValue
	sets    []string
	removes []string
}

func (e *exprBuilder) name(n string) string {
	if p, ok := e.nameOf[n]; ok {
		return p
	}
	if e.names == nil {
		e.names, e.nameOf = map[string]string{}, map[string]string{}
	}
	p := "#" + strconv.FormatInt(int64(len(e.names)), 36)
	e.names[p], e.nameOf[n] = n, p
	return p
}

func (e *exprBuilder) value(v types.AttributeValue) string {
	if e.values == nil {
		e.values = map[string]types.AttributeValue{}
	}
	p := ":" + strconv.FormatInt(int64(len(e.values)), 36)
	e.values[p] = v
	return p
}

func (e *exprBuilder) set(attr string, v types.AttributeValue) {
	e.sets = append(e.sets, e.name(attr)+"="+e.value(v))
}

// setOrRemove stores a string attribute, or removes it when the value is empty.
func (e *exprBuilder) setOrRemove(attr, v string) {
	if v == "" {
		e.removes = append(e.removes, e.name(attr))
		return
	}
	e.set(attr, str(v))
}

func (e *exprBuilder) input(table string, key map[string]types.AttributeValue, cond string) *dynamodb.UpdateItemInput {
	expr := "SET " + strings.Join(e.sets, ",")
	if len(e.removes) > 0 {
		expr += " REMOVE " + strings.Join(e.removes, ", ")
	}
	return &dynamodb.UpdateItemInput{
		TableName:                           aws.String(table),
		Key:                                 key,
		UpdateExpression:                    aws.String(expr),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}
