package emulator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/huntaze/message-pipeline/internal/fallback"
)

// TableCreator is the part of the DynamoDB client CreateTable needs.
type TableCreator interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// CreateTable creates a table keyed by the string attribute key, on-demand,
// in an emulator (in AWS the stack owns the tables and sets their TTL). An
// existing table is not an error.
func CreateTable(ctx context.Context, ddb TableCreator, name, key string) error {
	return CreateTableFrom(ctx, ddb, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String(key), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String(key), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	})
}

// CreateFallbackTable creates the fallback table with its creator index
// (fallback.CreateTableInput).
func CreateFallbackTable(ctx context.Context, ddb TableCreator, name string) error {
	return CreateTableFrom(ctx, ddb, fallback.CreateTableInput(name))
}

// CreateTableFrom creates the table in, and waits until it is active.
func CreateTableFrom(ctx context.Context, ddb TableCreator, in *dynamodb.CreateTableInput) error {
	name := aws.ToString(in.TableName)
	_, err := ddb.CreateTable(ctx, in)
	var inUse *ddbtypes.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	// A new table is CREATING for a moment, even in the emulator: wait until
	// it is ACTIVE so the first write does not fail (bounded).
	for range 100 {
		out, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err == nil && out.Table.TableStatus == ddbtypes.TableStatusActive {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("table %s not active after 5 s", name)
}
