package scraper

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// GateServersAPI is the DynamoDB call the gate's server record makes.
type GateServersAPI interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// DynamoGateServers is the send gate's shared record of the Redis servers
// it decides on (ratelimit.ServerRecord), one item per gate in the
// attempts table, beside the marks: every task announces its server there
// and reads the others in the same call, so a task that did not see a
// failover is fenced on a failback all the same (review 22 M A, AC). Its
// key cannot be a message id (those are UUIDs), and it has no TTL
// attribute: it lives as long as the table (expired servers are dropped
// by the announcements after them).
type DynamoGateServers struct {
	client GateServersAPI
	table  string
}

// NewDynamoGateServers returns the record on table.
func NewDynamoGateServers(client GateServersAPI, table string) *DynamoGateServers {
	return &DynamoGateServers{client: client, table: table}
}

// gateServerKeyPrefix names the record's item: the prefix, then the gate's
// name (its fence key). gateServerAttrPrefix names a server's attribute
// in it (its value: the server's time of its latest announcement, µs).
const (
	gateServerKeyPrefix  = "gate-server#"
	gateServerAttrPrefix = "srv:"
)

// Announce writes server's time atUS and removes drop's servers in one
// UpdateItem whose answer is the item just before it (ReturnValues
// ALL_OLD), with this write applied: DynamoDB applies writes to one item
// one at a time, so of two tasks announcing different servers the second
// one's answer holds the first. A server is removed only while it holds
// the time drop gives (a condition): one announced again since makes the
// call fail, and it is made again without removals. The one-server record
// the previous version reads and writes (server, atUs: its last writer)
// is written too, and read from the item before the write as one more
// entry: a previous-version task's write is seen (review 22 AE A: read
// after the write, it always named the announcer itself). A
// previous-version PutItem replaces the whole item, so during a rolling
// deployment the previous version's guarantee holds (docs/operations.md).
func (d *DynamoGateServers) Announce(ctx context.Context, name, server string, atUS int64, drop map[string]int64) (map[string]int64, error) {
	out, err := d.client.UpdateItem(ctx, d.announcement(name, server, atUS, drop))
	var refused *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &refused) {
		drop = nil
		out, err = d.client.UpdateItem(ctx, d.announcement(name, server, atUS, nil))
	}
	if err != nil {
		return nil, fmt.Errorf("gate servers: update: %w", err)
	}
	entries, err := gateServerEntries(out.Attributes)
	if err != nil {
		return nil, err
	}
	for s := range drop {
		if s != server {
			delete(entries, s) // removed by this write (its condition held)
		}
	}
	entries[server] = atUS
	return entries, nil
}

// announcement is Announce's UpdateItem.
func (d *DynamoGateServers) announcement(name, server string, atUS int64, drop map[string]int64) *dynamodb.UpdateItemInput {
	names := map[string]string{"#s": gateServerAttrPrefix + server, "#server": "server"}
	values := map[string]ddbtypes.AttributeValue{
		":at":     &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(atUS, 10)},
		":server": &ddbtypes.AttributeValueMemberS{Value: server},
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.table),
		Key:                       map[string]ddbtypes.AttributeValue{AttemptsKeyAttribute: &ddbtypes.AttributeValueMemberS{Value: gateServerKeyPrefix + name}},
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnValues:              ddbtypes.ReturnValueAllOld,
	}
	var removed, conds []string
	for _, s := range slices.Sorted(maps.Keys(drop)) {
		if s == server {
			continue
		}
		n, v := "#d"+strconv.Itoa(len(removed)), ":d"+strconv.Itoa(len(removed))
		names[n], values[v] = gateServerAttrPrefix+s, &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(drop[s], 10)}
		removed, conds = append(removed, n), append(conds, n+" = "+v)
	}
	expr := "SET #s = :at, #server = :server, atUs = :at"
	if len(removed) > 0 {
		expr += " REMOVE " + strings.Join(removed, ", ")
		in.ConditionExpression = aws.String(strings.Join(conds, " AND "))
	}
	in.UpdateExpression = aws.String(expr)
	return in
}

// gateServerEntries reads the servers of the record's item.
func gateServerEntries(item map[string]ddbtypes.AttributeValue) (map[string]int64, error) {
	entries := map[string]int64{}
	add := func(server string, v ddbtypes.AttributeValue) error {
		n, ok := v.(*ddbtypes.AttributeValueMemberN)
		if !ok {
			return fmt.Errorf("gate servers: %q is not a number", server)
		}
		us, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return fmt.Errorf("gate servers: bad time %q: %w", n.Value, err)
		}
		entries[server] = max(entries[server], us)
		return nil
	}
	for k, v := range item {
		if server, ok := strings.CutPrefix(k, gateServerAttrPrefix); ok {
			if err := add(server, v); err != nil {
				return nil, err
			}
		}
	}
	if s, ok := item["server"].(*ddbtypes.AttributeValueMemberS); ok && item["atUs"] != nil {
		if err := add(s.Value, item["atUs"]); err != nil {
			return nil, err
		}
	}
	return entries, nil
}
