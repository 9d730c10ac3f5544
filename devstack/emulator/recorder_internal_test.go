package emulator

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// cutBody is a request body the client stopped sending part-way.
type cutBody struct{ r io.Reader }

func (c *cutBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		return n, errors.New("client disconnected")
	}
	return n, err
}

func (c *cutBody) Close() error { return nil }

func TestARequestWhoseBodyWasCutIsNotRecordedAndAWholeOneIs(t *testing.T) {
	// GIVEN a DynamoDB PutItem whose body arrives whole, and one whose
	// client gave up while sending it (a task's shutdown)
	body := `{"TableName":"attempts","Item":{}}`
	whole := httptest.NewRequest("POST", "/", strings.NewReader(body))
	whole.Header.Set("X-Amz-Target", "DynamoDB_20120810.PutItem")
	cut := httptest.NewRequest("POST", "/", nil)
	cut.Header.Set("X-Amz-Target", "DynamoDB_20120810.PutItem")
	cut.Body = &cutBody{r: strings.NewReader(body[:12])}
	r := NewCallRecorder()
	// WHEN the recorder names them
	got, ok := r.fromHTTP("scraper", whole)
	_, cutOK := r.fromHTTP("scraper", cut)
	// THEN the whole one names its table, and the cut one is not a call
	// (it names no resource: recorded, it read as an unmapped grant)
	if !ok || got != (Call{Component: "scraper", Service: "DynamoDB", Operation: "PutItem", Resource: "attempts"}) {
		t.Errorf("whole request = %+v, %t", got, ok)
	}
	if cutOK {
		t.Error("a request whose body was cut was recorded")
	}
}
