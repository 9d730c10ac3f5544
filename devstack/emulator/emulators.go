package emulator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Region is the region every emulated client uses.
const Region = "us-east-1"

// AWSConfig returns an SDK config with static credentials and no shared
// config files read, so a developer's real AWS profile is never used.
func AWSConfig() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		// Up to 3 attempts, for one reason: Go's transport sometimes closes a
		// connection while a 200 response body is being read ("use of closed
		// network connection", aws/aws-sdk-go-v2#1825, #2737), which the SDK
		// counts as retryable; seen here about once in 50 calls under load.
		// A failing emulator still fails after the third attempt.
		RetryMaxAttempts: 3,
	}
}

// Endpoints maps SDK service ids ("SQS", "S3", "DynamoDB", "Secrets
// Manager") to local URLs.
type Endpoints map[string]string

// GetServiceBaseEndpoint is how the SDK's clients find a service-specific
// endpoint among the config's sources (the same lookup that reads
// AWS_ENDPOINT_URL_<SERVICE> from the environment).
func (e Endpoints) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	url, ok := e[sdkID]
	return url, ok, nil
}

// LocalAWS returns AWSConfig pointing each service at its local endpoint:
// the configuration a component's setup gets in place of the default chain.
func LocalAWS(e Endpoints) aws.Config {
	cfg := AWSConfig()
	cfg.ConfigSources = []any{e}
	return cfg
}

// Redis is a redis-server on 127.0.0.1 without persistence: nothing is
// written unless a client asks for a snapshot (SAVE), into a directory of
// its own that Close removes.
type Redis struct {
	Addr string
	bin  string
	port int
	dir  string
	proc *Process
}

// StartRedis starts redis-server on a free port.
func StartRedis() (*Redis, error) {
	bin, err := LookBinary("redis-server", InstallApt, "/usr/bin/redis-server")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "redis-")
	if err != nil {
		return nil, err
	}
	r := &Redis{bin: bin, dir: dir}
	// The port is chosen by us (redis cannot report a port it picked), so a
	// rare race with another process is retried.
	for range 5 {
		if r.port, err = FreePort(); err != nil {
			return nil, err
		}
		if err = r.launch(); err == nil {
			return r, nil
		}
	}
	_ = os.RemoveAll(dir)
	return nil, err
}

func (r *Redis) launch() error {
	r.Addr = "127.0.0.1:" + strconv.Itoa(r.port)
	p, err := StartProcess("redis-server", nil, nil, r.bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port),
		"--save", "", "--appendonly", "no", "--protected-mode", "yes", "--dir", r.dir)
	if err != nil {
		return err
	}
	r.proc = p
	if err := WaitTCP(p, r.Addr); err != nil {
		_ = p.Close()
		return fmt.Errorf("%w\n%s", err, p.Output())
	}
	return nil
}

// Stop kills the server (an outage, as seen by clients).
func (r *Redis) Stop() { _ = r.proc.Close() }

// Restart starts a fresh, empty server on the same port (a failover to a
// replica that lost the last writes, as seen by clients).
func (r *Redis) Restart() error {
	_ = r.proc.Close()
	if err := os.Remove(filepath.Join(r.dir, "dump.rdb")); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("restart redis: %w", err)
	}
	if err := r.launch(); err != nil {
		return fmt.Errorf("restart redis: %w", err)
	}
	return nil
}

// RestartFromSnapshot starts a new server on the same port that loads the
// last snapshot a client took (SAVE): a restart from an older RDB, or a
// failover to a replica behind on replication, as seen by clients. It
// keeps what the snapshot held and loses every write after it.
func (r *Redis) RestartFromSnapshot() error {
	_ = r.proc.Close()
	if err := r.launch(); err != nil {
		return fmt.Errorf("restart redis from its snapshot: %w", err)
	}
	return nil
}

// Output is the server's log.
func (r *Redis) Output() string { return r.proc.Output() }

// Close stops the server and removes its directory.
func (r *Redis) Close() error {
	err := r.proc.Close()
	_ = os.RemoveAll(r.dir)
	return err
}

// Fauxqs is a running fauxqs emulator serving SQS and S3.
type Fauxqs struct {
	Endpoint string
	Config   aws.Config
	SQS      *sqs.Client
	S3       *s3.Client
	Process  *Process
}

// StartFauxqs starts fauxqs on a free 127.0.0.1 port through the loopback
// launcher and returns clients for it.
func StartFauxqs(root string) (*Fauxqs, error) {
	p, url, err := startLauncher(root, "fauxqs", "fauxqs-launcher.mjs")
	if err != nil {
		return nil, err
	}
	cfg := AWSConfig()
	return &Fauxqs{
		Endpoint: url, Config: cfg, Process: p,
		SQS: sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(url) }),
		S3:  s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(url); LocalS3(o) }),
	}, nil
}

// LocalS3 sets what an S3 client needs to talk to fauxqs: path-style
// buckets, and no streaming checksums (plain http cannot carry them).
func LocalS3(o *s3.Options) {
	o.UsePathStyle = true
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
}

// Close stops the emulator.
func (f *Fauxqs) Close() error { return f.Process.Close() }

// CreateQueues creates every queue of env with the names and attributes of
// the CDK stack (internal/queues), dead-letter queues first.
func (f *Fauxqs) CreateQueues(ctx context.Context, env string) (System, error) {
	return ProvisionSystem(ctx, f.SQS, env)
}

// Dynalite is a running in-memory DynamoDB emulator.
type Dynalite struct {
	Endpoint string
	Config   aws.Config
	DynamoDB *dynamodb.Client
	Process  *Process
}

// StartDynalite starts dynalite on a free 127.0.0.1 port.
func StartDynalite(root string) (*Dynalite, error) {
	p, url, err := startLauncher(root, "dynalite", "dynalite-launcher.cjs")
	if err != nil {
		return nil, err
	}
	cfg := AWSConfig()
	return &Dynalite{
		Endpoint: url, Config: cfg, Process: p,
		DynamoDB: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(url) }),
	}, nil
}

// Close stops the emulator.
func (d *Dynalite) Close() error { return d.Process.Close() }

// QueueDepth returns visible + in flight + delayed messages of a queue, or
// -1 if the queue cannot be read.
func QueueDepth(client *sqs.Client, url string) int {
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil {
		return -1
	}
	n := 0
	for _, k := range []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"} {
		var v int
		fmt.Sscan(out.Attributes[k], &v)
		n += v
	}
	return n
}
