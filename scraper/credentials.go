package scraper

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// CredentialStore returns a creator's session credentials. Their Version
// changes whenever the session does: a creator paused for a rejected
// session resumes when it sees another version.
type CredentialStore interface {
	Get(ctx context.Context, creator string) (onlyfans.Credentials, error)
}

// ErrNoSession marks a creator without a stored session: its messages wait
// like a rejected session's (the creator has not connected OnlyFans yet).
var ErrNoSession = errors.New("no OnlyFans session stored for the creator")

// ParseSession reads one creator's secret: {"sessionCookie": "..."}.
func ParseSession(data []byte) (onlyfans.Credentials, error) {
	var c onlyfans.Credentials
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("session secret: %w", err)
	}
	if c.SessionCookie == "" {
		return c, errors.New("session secret: sessionCookie is empty")
	}
	return c, nil
}

// ParseCredentials reads {"<creator>": {"sessionCookie": "..."}, ...}
// (local runs keep every creator in one file).
func ParseCredentials(data []byte) (map[string]onlyfans.Credentials, error) {
	var m map[string]onlyfans.Credentials
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	return m, nil
}

// StaticCredentials is a fixed map (local runs: from a file or env); a
// session's version is a digest of its cookie.
type StaticCredentials map[string]onlyfans.Credentials

// Get implements CredentialStore.
func (s StaticCredentials) Get(_ context.Context, creator string) (onlyfans.Credentials, error) {
	c, ok := s[creator]
	if !ok {
		return onlyfans.Credentials{}, fmt.Errorf("%w: %s", ErrNoSession, creator)
	}
	if c.Version == "" {
		sum := sha256.Sum256([]byte(c.SessionCookie))
		c.Version = hex.EncodeToString(sum[:8])
	}
	return c, nil
}

// FileCredentials loads a StaticCredentials from a JSON file.
func FileCredentials(path string) (StaticCredentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCredentials(b)
}

// SessionSecretName is the Secrets Manager name of one creator's session:
// one secret per creator (a secret holds at most 64 KB, and a creator's
// session is rotated and revoked on its own). The task role may read only
// names under the prefix.
func SessionSecretName(prefix, creator string) string { return prefix + creator }

// SecretsManagerCredentials reads each creator's session from its own
// secret, cached for TTL so a renewed session is picked up without a
// restart; the secret's version id is the session's version.
type SecretsManagerCredentials struct {
	Client interface {
		GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	}
	// Prefix of the secret names (huntaze/<env>/onlyfans-session/).
	Prefix string
	TTL    time.Duration

	mu    sync.Mutex
	cache map[string]cachedSession
}

type cachedSession struct {
	creds   onlyfans.Credentials
	fetched time.Time
}

// Get implements CredentialStore.
func (s *SecretsManagerCredentials) Get(ctx context.Context, creator string) (onlyfans.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache[creator]; ok && time.Since(c.fetched) <= s.TTL {
		return c.creds, nil
	}
	name := SessionSecretName(s.Prefix, creator)
	out, err := s.Client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return onlyfans.Credentials{}, fmt.Errorf("%w: %s (secret %s)", ErrNoSession, creator, name)
	}
	if err != nil {
		return onlyfans.Credentials{}, fmt.Errorf("session secret %s: %w", name, err)
	}
	c, err := ParseSession([]byte(aws.ToString(out.SecretString)))
	if err != nil {
		return onlyfans.Credentials{}, fmt.Errorf("%s: %w", name, err)
	}
	c.Version = aws.ToString(out.VersionId)
	if s.cache == nil {
		s.cache = map[string]cachedSession{}
	}
	s.cache[creator] = cachedSession{creds: c, fetched: time.Now()}
	return c, nil
}
