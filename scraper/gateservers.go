package scraper

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoGateServers is the send gate's shared record of the Redis server
// it last decided on (ratelimit.ServerRecord), one item per gate in the
// attempts table, beside the marks: every task reads it and writes it, so a
// task that did not see a failover is fenced on a failback all the same
// (review 22 M A). Its key cannot be a message id (those are UUIDs), and
// it has no TTL attribute: it lives as long as the table.
type DynamoGateServers struct {
	client DynamoDBAPI
	table  string
}

// NewDynamoGateServers returns the record on table.
func NewDynamoGateServers(client DynamoDBAPI, table string) *DynamoGateServers {
	return &DynamoGateServers{client: client, table: table}
}

// gateServerKeyPrefix names the record's item: the prefix, then the gate's
// name (its fence key).
const gateServerKeyPrefix = "gate-server#"

func (d *DynamoGateServers) key(name string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{AttemptsKeyAttribute: &ddbtypes.AttributeValueMemberS{Value: gateServerKeyPrefix + name}}
}

// LastServer reads the record with a strongly consistent read (another
// task may have written it a moment ago).
func (d *DynamoGateServers) LastServer(ctx context.Context, name string) (string, int64, error) {
	out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table), Key: d.key(name), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", 0, fmt.Errorf("gate servers: get: %w", err)
	}
	server, _ := out.Item["server"].(*ddbtypes.AttributeValueMemberS)
	at, _ := out.Item["atUs"].(*ddbtypes.AttributeValueMemberN)
	if server == nil || at == nil {
		return "", 0, nil
	}
	us, err := strconv.ParseInt(at.Value, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("gate servers: bad time %q: %w", at.Value, err)
	}
	return server.Value, us, nil
}

// RecordServer writes the record: the gate decided on server at atUS (its
// Redis time).
func (d *DynamoGateServers) RecordServer(ctx context.Context, name, server string, atUS int64) error {
	item := d.key(name)
	item["server"] = &ddbtypes.AttributeValueMemberS{Value: server}
	item["atUs"] = &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(atUS, 10)}
	if _, err := d.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: item}); err != nil {
		return fmt.Errorf("gate servers: put: %w", err)
	}
	return nil
}
