package ratelimit

import (
	"time"

	"github.com/huntaze/message-pipeline/internal/envconfig"
)

// Limit is the per-creator send limit: Count sends in any rolling Window.
// It is one value in the stack (infra sets it per environment) that the
// rate limiter's, the scraper send gate's and the API's settings all take,
// so the three cannot disagree; its default, OnlyFans' 10 per 60 s, is
// written here only.
type Limit struct {
	Count  int           `env:"RATE_LIMIT" envDefault:"10"`
	Window time.Duration `env:"RATE_WINDOW" envDefault:"60s"`
}

// DefaultLimit is OnlyFans' limit (the tags above).
func DefaultLimit() Limit { return envconfig.Defaults[Limit]() }

// Drain is how long the site needs for one more send at the limit: the
// Window shared out over Count.
func (l Limit) Drain() time.Duration {
	if l.Count < 1 {
		return l.Window
	}
	return l.Window / time.Duration(l.Count)
}
