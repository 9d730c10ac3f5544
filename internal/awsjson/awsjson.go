// Package awsjson makes single AWS JSON-protocol (1.1) calls, signed with
// the SDK's SigV4 signer, for the one read a Lambda makes of a service
// whose SDK client would cost it 1.2 to 1.5 MB (the generated shapes of
// every operation, linked by the import alone): the flag's SSM parameter
// and the Redis AUTH token's secret. Services called on every message keep
// their SDK clients.
package awsjson

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/huntaze/message-pipeline/internal/awsenv"
)

// Service names one JSON-protocol service.
type Service struct {
	SDKID        string // "SSM": its AWS_ENDPOINT_URL_<SERVICE> name
	SigningName  string // "ssm"
	TargetPrefix string // "AmazonSSM": X-Amz-Target is prefix.Operation
	Host         string // "ssm": https://<host>.<region>.amazonaws.com
}

// The services this package calls.
var (
	SSM            = Service{SDKID: "SSM", SigningName: "ssm", TargetPrefix: "AmazonSSM", Host: "ssm"}
	SecretsManager = Service{SDKID: "Secrets Manager", SigningName: "secretsmanager", TargetPrefix: "secretsmanager", Host: "secretsmanager"}
)

// Client calls one service.
type Client struct {
	Service     Service
	Endpoint    string
	Region      string
	Credentials aws.CredentialsProvider
	HTTP        aws.HTTPClient
	// Attempts per call (3, as the SDK's standard retryer): a transport
	// error, a 5xx or a throttling answer is retried after a short backoff.
	Attempts int
	signer   *v4.Signer
}

// New is the client of svc in cfg's region, at cfg's endpoint for it
// (AWS_ENDPOINT_URL_<SERVICE>) or its public one.
func New(cfg aws.Config, svc Service) *Client {
	endpoint := awsenv.ServiceEndpoint(context.Background(), cfg, svc.SDKID)
	if endpoint == "" {
		suffix := "amazonaws.com"
		if strings.HasPrefix(cfg.Region, "cn-") {
			suffix = "amazonaws.com.cn"
		}
		endpoint = "https://" + svc.Host + "." + cfg.Region + "." + suffix
	}
	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{Service: svc, Endpoint: endpoint, Region: cfg.Region, Credentials: cfg.Credentials, HTTP: httpClient, Attempts: 3, signer: v4.NewSigner()}
}

// Error is a service's error answer.
type Error struct {
	Operation string
	Status    int
	Code      string // "ParameterNotFound", without namespace
	Message   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %d %s: %s", e.Operation, e.Status, e.Code, e.Message)
}

func (e *Error) retryable() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests || strings.Contains(e.Code, "Throttl")
}

// Call runs operation with in as the JSON body and decodes the answer into
// out.
func (c *Client) Call(ctx context.Context, operation string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err = c.once(ctx, operation, body, out)
		var apiErr *Error
		retry := err != nil && ctx.Err() == nil && (!errors.As(err, &apiErr) || apiErr.retryable())
		if !retry || attempt >= max(c.Attempts, 1) {
			return err
		}
		backoff := time.Duration(rand.Int64N(int64(50*time.Millisecond) << attempt))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
	}
}

func (c *Client) once(ctx context.Context, operation string, body []byte, out any) error {
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("%s: credentials: %w", operation, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", c.Service.TargetPrefix+"."+operation)
	sum := sha256.Sum256(body)
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), c.Service.SigningName, c.Region, time.Now().UTC()); err != nil {
		return fmt.Errorf("%s: sign: %w", operation, err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", operation, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: read answer: %w", operation, err)
	}
	if resp.StatusCode/100 != 2 {
		return decodeError(operation, resp, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", operation, err)
	}
	return nil
}

// decodeError reads the error's code from the body's __type or the
// X-Amzn-ErrorType header, either possibly namespaced
// ("com.amazonaws.ssm#ParameterNotFound") or suffixed (":http://...").
func decodeError(operation string, resp *http.Response, data []byte) error {
	var e struct {
		Type     string `json:"__type"`
		Message  string `json:"message"`
		MessageC string `json:"Message"`
	}
	_ = json.Unmarshal(data, &e)
	code := e.Type
	if code == "" {
		code = resp.Header.Get("X-Amzn-ErrorType")
	}
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	msg := e.Message
	if msg == "" {
		msg = e.MessageC
	}
	return &Error{Operation: operation, Status: resp.StatusCode, Code: code, Message: msg}
}
