// Package setup is the scraper's wiring: Load, which checks the task's
// environment (scraper/settings) with what the browser, the site profile
// and the consumer say of it, the collaborators' configurations built from
// those settings, and Run, which the scraper's main calls with the
// process's AWS configuration.
package setup

import (
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/scraper/onlyfans/profiles"
	"github.com/huntaze/message-pipeline/scraper/settings"
)

// Load parses and checks the environment: the settings' own rules
// (settings.Parse), then the browser options, the site profile with the
// sender's configuration, the processor's and the consumer's.
func Load(environ map[string]string) (settings.Settings, error) {
	s, errs := settings.Parse(environ)
	if err := (browser.Options{Sandbox: s.ChromiumSandbox}).Validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg, err := Sender(s); err != nil {
		// It names SITE_PROFILE or SITE_PROFILE_FILE; an unknown name
		// settings.Parse has reported already.
		if !errors.Is(err, profiles.ErrUnknown) {
			errs = append(errs, err)
		}
	} else if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := Processor(s).Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := Consumer(s).Validate(); err != nil && s.WorkflowsQueueURL != "" {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return settings.Settings{}, settings.Error(errs)
	}
	return s, nil
}

// Processor returns the processor configuration.
func Processor(s settings.Settings) scraper.Config {
	return scraper.Config{
		MaxFailures: s.MaxFailures, BackoffBase: s.BackoffBase, BackoffFactor: s.BackoffFactor,
		ServerAttempts: s.ServerAttempts, ServerBackoff: s.ServerBackoff, RateLimitDefault: s.RateLimitDefault,
		BreakerFailures: s.BreakerFailures, BreakerOpenFor: s.BreakerOpenFor, OutageBackoff: s.OutageBackoff, OutageBackoffMax: s.OutageBackoffMax,
		MaxReceiveCount: s.WorkflowsMaxReceiveCount,
		ReadBackSettle:  s.ReadBackSettle,
		PauseProbeEvery: s.PauseProbeEvery,
		// An unanswered send request may land this long after its click.
		LateCommitHorizon: s.LateCommitHorizon,
		ChatFaultPatience: s.ChatFaultPatience,
		EmptyChatPatience: s.EmptyChatPatience,
		// A 2xx proof the mark store refuses is tried again this long.
		AnsweredProofPatience: s.AnsweredProofPatience,
	}
}

// Ledger returns the scraper's ledger on rdb (its keys under
// s.LedgerPrefix()).
func Ledger(s settings.Settings, rdb redis.UniversalClient) *scraper.Ledger {
	return scraper.NewLedger(rdb, s.LedgerPrefix(), s.LedgerTTL)
}

// Results returns the results writer's configuration for owner.
func Results(s settings.Settings, owner string) scraper.ResultsConfig {
	return scraper.ResultsConfig{Bucket: s.ResultsBucket, CapturesKey: s.CapturesKey, Owner: owner, FlushEvery: s.ResultsFlushEvery, MaxRecords: s.ResultsMaxRecords, MaxPending: s.ResultsMaxPending}
}

// Consumer returns the consumer configuration.
func Consumer(s settings.Settings) scraper.ConsumerConfig {
	return scraper.ConsumerConfig{QueueURL: s.WorkflowsQueueURL, DeadLetterURL: s.WorkflowsDLQURL, Wait: s.PollWait, MaxGroups: s.MaxGroups, ErrorBackoff: s.ReceiveErrorBackoff, Heartbeat: s.Heartbeat}
}

// Sender returns the browser sender configuration with its site profile:
// the file if SITE_PROFILE_FILE is set (Load refuses it together with
// SITE_PROFILE), else the built-in profile SITE_PROFILE names.
func Sender(s settings.Settings) (onlyfans.Config, error) {
	profile, err := onlyfans.SelectProfile(s.SiteProfile, s.SiteProfileFile)
	return onlyfans.Config{
		BaseURL: s.BaseURL, Profile: profile, Browser: browser.Options{DriverDir: s.DriverDir, ChromiumPath: s.ChromiumPath, ExtraArgs: s.ChromiumExtraArgs, Sandbox: s.ChromiumSandbox},
		Timeouts:     onlyfans.Timeouts{Navigation: s.NavTimeout, Action: s.ActionTimeout, Response: s.ResponseTimeout},
		RecycleAfter: s.RecycleAfter, KeepContexts: s.KeepContexts, Traces: s.Traces,
	}, err
}
