package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableAPI is the part of the DynamoDB client CreateTable uses; *dynamodb.Client
// satisfies it.
type TableAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// TableInput is the table halosync uses, as template.yaml declares it: string keys pk and
// sk, the by-client index GSI1 on gsi1pk and gsi1sk projecting every attribute, the
// by-kind index GSI2 on gsi2pk and gsi2sk projecting deleted and parent_id
// (GSI2Projected), the by-change index GSI3 on gsi3pk and gsi3sk projecting every
// attribute (the read API's listing answers whole objects from it), on-demand billing. (Time to live on expires_at is a separate call; see
// CreateTable.) template.yaml's table also has a stream, which WithStream adds: DynamoDB
// Local makes every write about twenty times slower on a table with one, so only the
// tables whose stream is read ask for it.
func TableInput(name string) *dynamodb.CreateTableInput {
	str := func(n string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(n), AttributeType: types.ScalarAttributeTypeS}
	}
	key := func(hash, rng string) []types.KeySchemaElement {
		return []types.KeySchemaElement{
			{AttributeName: aws.String(hash), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(rng), KeyType: types.KeyTypeRange},
		}
	}
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			str(AttrPartitionKey), str(AttrSortKey), str(AttrGSI1PK), str(AttrGSI1SK), str(AttrGSI2PK), str(AttrGSI2SK),
			str(AttrGSI3PK), str(AttrGSI3SK),
		},
		KeySchema: key(AttrPartitionKey, AttrSortKey),
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName:  aws.String(IndexGSI1),
			KeySchema:  key(AttrGSI1PK, AttrGSI1SK),
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}, {
			IndexName: aws.String(IndexGSI2),
			KeySchema: key(AttrGSI2PK, AttrGSI2SK),
			Projection: &types.Projection{
				ProjectionType:   types.ProjectionTypeInclude,
				NonKeyAttributes: append([]string(nil), GSI2Projected...),
			},
		}, {
			IndexName:  aws.String(IndexGSI3),
			KeySchema:  key(AttrGSI3PK, AttrGSI3SK),
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	}
}

// WithStream gives the table the stream template.yaml declares: new and old images, which
// the publisher reads (StreamEvent).
func WithStream(in *dynamodb.CreateTableInput) {
	in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages}
}

// CreateTable creates the table (TableInput, shaped by opts) unless it exists, waits until it is active
// and turns on time to live on expires_at. A table that exists without one of
// TableInput's indexes (made by an older halosync) is an error that says so: the store
// would fail on it. It is for tests and local use; in AWS the template creates the table.
func CreateTable(ctx context.Context, client TableAPI, name string, opts ...func(*dynamodb.CreateTableInput)) error {
	in := TableInput(name)
	for _, o := range opts {
		o(in)
	}
	_, err := client.CreateTable(ctx, in)
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("dynamo: create table %s: %w", name, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 5 * time.Second
	})
	described, err := waiter.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 5*time.Minute)
	if err != nil {
		return fmt.Errorf("dynamo: create table %s: wait until active: %w", name, err)
	}
	if err := hasIndexes(described.Table); err != nil {
		return fmt.Errorf("dynamo: create table %s: %w", name, err)
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("dynamo: create table %s: describe time to live: %w", name, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == AttrExpiresAt &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(AttrExpiresAt), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("dynamo: create table %s: enable time to live on %s: %w", name, AttrExpiresAt, err)
	}
	return nil
}

// hasIndexes says which of TableInput's global secondary indexes an existing table lacks.
func hasIndexes(t *types.TableDescription) error {
	have := map[string]bool{}
	if t != nil {
		for _, gsi := range t.GlobalSecondaryIndexes {
			have[aws.ToString(gsi.IndexName)] = true
		}
	}
	var missing []string
	for _, gsi := range TableInput("").GlobalSecondaryIndexes {
		if n := aws.ToString(gsi.IndexName); !have[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the table exists without the index %s that this halosync needs; delete it or add the index as dynamo.TableInput declares it",
			strings.Join(missing, ", "))
	}
	return nil
}
