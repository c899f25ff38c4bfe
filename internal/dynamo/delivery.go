package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/halosync/halosync/internal/change"
)

// Keys of one field's entry under a delivery record's changed map.
const (
	changeFrom   = "from"
	changeTo     = "to"
	changeAdded  = "added"
	changeElided = "elided"
)

// RecordDelivery stores what one delivery did to one object with one PutItem, replacing
// the record stored for the same delivery and object as change.Delivery.Replaces allows:
// a duplicate or stale record is put on condition that the stored one does not say the
// delivery applied (or marked pending) the same version, and a failed condition means the
// stored record stands. The item expires (expires_at) change.DeliveryRetention after
// d.ProcessedAt.
func (s *Store) RecordDelivery(ctx context.Context, d change.Delivery) error {
	if err := d.Validate(); err != nil {
		return err
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: deliveryItem(d)}
	if d.Conditional() {
		in.ConditionExpression = aws.String("attribute_not_exists(#pk) OR #exp <= :processed OR #version <> :version OR NOT (#outcome IN (:applied, :pending))")
		in.ExpressionAttributeNames = map[string]string{"#pk": AttrPartitionKey, "#exp": AttrExpiresAt, "#version": attrVersion, "#outcome": attrOutcome}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{
			":processed": num(d.ProcessedAt.Unix()), ":version": num(d.Version),
			":applied": str(string(change.Applied)), ":pending": str(string(change.Pending)),
		}
	}
	_, err := s.client.PutItem(ctx, in)
	var kept *types.ConditionalCheckFailedException
	if errors.As(err, &kept) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dynamo: record delivery %s %s %s %s: put item: %w", d.Connection, d.DeliveryID, d.Kind, d.ID, err)
	}
	return nil
}

// Deliveries returns the unexpired records of one delivery, one per object it carried,
// ordered by sort key (<kind>#<id>); none when the delivery is unknown. The query is
// strongly consistent.
func (s *Store) Deliveries(ctx context.Context, conn, deliveryID string) ([]change.Delivery, error) {
	what := fmt.Sprintf("dynamo: read delivery %s %s", conn, deliveryID)
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		FilterExpression:          aws.String("#exp > :now"),
		ExpressionAttributeNames:  map[string]string{"#pk": AttrPartitionKey, "#exp": AttrExpiresAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(change.DeliveryPartitionKey(conn, deliveryID)), ":now": num(s.now().Unix())},
		ConsistentRead:            aws.Bool(true),
	}
	var out []change.Delivery
	for {
		page, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		for _, item := range page.Items {
			d, err := decodeDelivery(item)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			out = append(out, d)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// deliveryItem lays a record out as the package doc describes.
func deliveryItem(d change.Delivery) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		AttrPartitionKey: str(change.DeliveryPartitionKey(d.Connection, d.DeliveryID)),
		AttrSortKey:      str(change.DeliverySortKey(d.Kind, d.ID)),
		attrConn:         str(d.Connection),
		attrDelivery:     str(d.DeliveryID),
		attrKind:         str(string(d.Kind)),
		attrID:           str(d.ID),
		attrOutcome:      str(string(d.Outcome)),
		attrVersion:      num(d.Version),
		attrSummary:      str(d.Summary),
		attrProcessedAt:  str(d.ProcessedAt.UTC().Format(time.RFC3339Nano)),
		AttrExpiresAt:    num(d.ExpiresAt().Unix()),
	}
	for name, v := range map[string]string{
		attrParentID: d.ParentID, attrOp: string(d.Op), attrEvent: d.Event, attrSource: string(d.Source), attrReason: d.Reason,
		attrEndpoint: d.Endpoint,
	} {
		if v != "" {
			item[name] = str(v)
		}
	}
	if !d.ReceivedAt.IsZero() {
		item[attrReceivedAt] = str(d.ReceivedAt.UTC().Format(time.RFC3339Nano))
	}
	if d.Created {
		item[attrCreated] = &types.AttributeValueMemberBOOL{Value: true}
	}
	if d.ChangesUnknown {
		item[attrChangesUnknown] = &types.AttributeValueMemberBOOL{Value: true}
	}
	if len(d.Changed) > 0 {
		changed := make(map[string]types.AttributeValue, len(d.Changed))
		for k, fc := range d.Changed {
			changed[k] = fieldChange(fc)
		}
		item[attrChanged] = &types.AttributeValueMemberM{Value: changed}
	}
	return item
}

// fieldChange is one entry of the changed map. A value DynamoDB cannot hold at this depth
// is elided rather than failing the record.
func fieldChange(fc change.FieldChange) types.AttributeValue {
	m := map[string]types.AttributeValue{}
	if fc.Added {
		m[changeAdded] = &types.AttributeValueMemberBOOL{Value: true}
	}
	if !fc.Elided {
		// changed (1) > field (2) > from, to (3): the values sit two levels deeper than in fields.
		to, errTo := marshalValue(fc.To, 3)
		from, errFrom := marshalValue(fc.From, 3)
		if errTo == nil && errFrom == nil {
			m[changeTo] = to
			if !fc.Added {
				m[changeFrom] = from
			}
			return &types.AttributeValueMemberM{Value: m}
		}
	}
	m[changeElided] = &types.AttributeValueMemberBOOL{Value: true}
	return &types.AttributeValueMemberM{Value: m}
}

// decodeDelivery reads a delivery record item.
func decodeDelivery(item map[string]types.AttributeValue) (change.Delivery, error) {
	d := change.Delivery{
		Connection: getS(item, attrConn), DeliveryID: getS(item, attrDelivery),
		Kind: change.Kind(getS(item, attrKind)), ID: getS(item, attrID), ParentID: getS(item, attrParentID),
		Op: change.Operation(getS(item, attrOp)), Event: getS(item, attrEvent), Source: change.Source(getS(item, attrSource)),
		Endpoint: getS(item, attrEndpoint),
		Outcome:  change.Outcome(getS(item, attrOutcome)), Reason: getS(item, attrReason), Summary: getS(item, attrSummary),
	}
	var err error
	if d.Version, err = getN(item, attrVersion); err != nil {
		return change.Delivery{}, err
	}
	if b, ok := item[attrChangesUnknown].(*types.AttributeValueMemberBOOL); ok {
		d.ChangesUnknown = b.Value
	}
	if b, ok := item[attrCreated].(*types.AttributeValueMemberBOOL); ok {
		d.Created = b.Value
	}
	for name, t := range map[string]*time.Time{attrReceivedAt: &d.ReceivedAt, attrProcessedAt: &d.ProcessedAt} {
		if s := getS(item, name); s != "" {
			if *t, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return change.Delivery{}, fmt.Errorf("attribute %s: %w", name, err)
			}
		}
	}
	changed, ok := item[attrChanged].(*types.AttributeValueMemberM)
	if !ok {
		return d, nil
	}
	d.Changed = make(map[string]change.FieldChange, len(changed.Value))
	for k, v := range changed.Value {
		m, ok := v.(*types.AttributeValueMemberM)
		if !ok {
			return change.Delivery{}, fmt.Errorf("changed field %q is %T, not a map", k, v)
		}
		var fc change.FieldChange
		fc.Added = getBool(m.Value, changeAdded)
		fc.Elided = getBool(m.Value, changeElided)
		for key, dst := range map[string]*any{changeFrom: &fc.From, changeTo: &fc.To} {
			if av, ok := m.Value[key]; ok {
				if *dst, err = unmarshalValue(av); err != nil {
					return change.Delivery{}, fmt.Errorf("changed field %q, %s: %w", k, key, err)
				}
			}
		}
		d.Changed[k] = fc
	}
	return d, nil
}

func getBool(m map[string]types.AttributeValue, name string) bool {
	b, ok := m[name].(*types.AttributeValueMemberBOOL)
	return ok && b.Value
}
