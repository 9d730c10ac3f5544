package harness

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// CompressedVisibility passes every call to a real SQS client but records
// each visibility timeout asked for and applies 0 instead. SQS visibility
// is whole seconds; a test of an outage that lasts hundreds of receives
// would otherwise take hours. What the code asked for stays checkable.
type CompressedVisibility struct {
	*sqs.Client
	mu    sync.Mutex
	asked []int32
}

// ChangeMessageVisibility records the timeout and makes the message visible.
func (c *CompressedVisibility) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, o ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	c.mu.Lock()
	c.asked = append(c.asked, in.VisibilityTimeout)
	c.mu.Unlock()
	in2 := *in
	in2.VisibilityTimeout = 0
	return c.Client.ChangeMessageVisibility(ctx, &in2, o...)
}

// Asked returns the visibility timeouts asked for so far.
func (c *CompressedVisibility) Asked() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int32(nil), c.asked...)
}
