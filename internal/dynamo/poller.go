package dynamo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/halosync/halosync/internal/change"
)

// Cursor item attributes (beside pk, sk and conn).
const (
	attrDoc       = "doc"
	attrUpdatedAt = "updated_at"
)

// LoadCursor returns the poller document saved under conn and name, byte for byte, and
// false when none is. The read is strongly consistent.
func (s *Store) LoadCursor(ctx context.Context, conn, name string) ([]byte, bool, error) {
	if err := change.ValidateCursorKey(conn, name); err != nil {
		return nil, false, fmt.Errorf("dynamo: load cursor: %w", err)
	}
	item, err := s.getItem(ctx, cursorKey(conn, name))
	if err != nil {
		return nil, false, fmt.Errorf("dynamo: load cursor %s %s: %w", conn, name, err)
	}
	if item == nil {
		return nil, false, nil
	}
	doc, ok := item[attrDoc].(*types.AttributeValueMemberS)
	if !ok {
		return nil, false, fmt.Errorf("dynamo: load cursor %s %s: the item has no string %s", conn, name, attrDoc)
	}
	return []byte(doc.Value), true, nil
}

// SaveCursor stores doc under conn and name with the time it was saved, replacing what is
// there: one unconditional PutItem, as one connection's poller runs alone. doc must be
// valid JSON (change.ValidateCursor); it is kept as a string attribute, so it may be as
// large as an item allows (400 KB).
func (s *Store) SaveCursor(ctx context.Context, conn, name string, doc []byte) error {
	if err := change.ValidateCursor(conn, name, doc); err != nil {
		return fmt.Errorf("dynamo: save cursor: %w", err)
	}
	item := cursorKey(conn, name)
	item[attrConn] = str(conn)
	item[attrDoc] = str(string(doc))
	item[attrUpdatedAt] = str(s.now().UTC().Format(time.RFC3339Nano))
	if _, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return fmt.Errorf("dynamo: save cursor %s %s: put item: %w", conn, name, err)
	}
	return nil
}

func cursorKey(conn, name string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrPartitionKey: str(change.CursorPartitionKey(conn)),
		AttrSortKey:      str(change.CursorSortKey(name)),
	}
}

// StoredIDs calls fn with every object of kind stored in conn, tombstones (Deleted) and
// pending markers included, one Query page of the by-kind index GSI2 at a time, in index
// order (gsi2sk as text: the id, or the ticket id then the note id). A page holds up to
// 1 MB of index entries (tens of thousands of ids). The index is eventually consistent: an
// object written a moment ago may be missing, which a reconcile run daily can afford.
// Objects written before GSI2 existed are not listed (see the package documentation). An
// error from fn ends the listing and is returned as it is.
func (s *Store) StoredIDs(ctx context.Context, conn string, kind change.Kind, fn func(ids []change.StoredID) error) error {
	if err := change.ValidateKindListing(conn, kind); err != nil {
		return fmt.Errorf("dynamo: list ids: %w", err)
	}
	spec, _ := change.Lookup(kind)
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.table),
		IndexName:              aws.String(IndexGSI2),
		KeyConditionExpression: aws.String("#pk = :pk"),
		ProjectionExpression:   aws.String("#sk, #parent, #deleted"),
		ExpressionAttributeNames: map[string]string{
			"#pk": AttrGSI2PK, "#sk": AttrGSI2SK, "#parent": attrParentID, "#deleted": attrDeleted,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(change.KindIndexKey(conn, kind))},
	}
	if s.pageSize > 0 {
		in.Limit = aws.Int32(s.pageSize)
	}
	for {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return fmt.Errorf("dynamo: list %s %s ids: %w", conn, kind, err)
		}
		if len(out.Items) > 0 {
			page := make([]change.StoredID, 0, len(out.Items))
			for _, item := range out.Items {
				id, err := storedID(item, spec.Parent != "")
				if err != nil {
					return fmt.Errorf("dynamo: list %s %s ids: %w", conn, kind, err)
				}
				page = append(page, id)
			}
			if err := fn(page); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// storedID reads one GSI2 entry: the id is gsi2sk, after "<parentId>#" for a kind stored
// under a parent.
func storedID(item map[string]types.AttributeValue, underParent bool) (change.StoredID, error) {
	id := change.StoredID{ID: getS(item, AttrGSI2SK), ParentID: getS(item, attrParentID)}
	if b, ok := item[attrDeleted].(*types.AttributeValueMemberBOOL); ok {
		id.Deleted = b.Value
	}
	if underParent {
		rest, ok := strings.CutPrefix(id.ID, id.ParentID+"#")
		if !ok || id.ParentID == "" {
			return change.StoredID{}, fmt.Errorf("index entry %q does not start with its parent id %q", id.ID, id.ParentID)
		}
		id.ID = rest
	}
	if id.ID == "" {
		return change.StoredID{}, fmt.Errorf("index entry without an id")
	}
	return id, nil
}
