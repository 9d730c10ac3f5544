package settings

// Attempts table attributes: the scraper's mark store (scraper.DynamoMarks)
// keys and expires its items by them, the CDK stack and the local
// assembly make the table with them.
const (
	AttemptsKeyAttribute = "messageId"
	AttemptsTTLAttribute = "expiresAt"
)

// Metric names (seed 003 R5.4): the scraper emits them, the stack's
// alarms and dashboard read them.
const (
	MetricSuccess      = "scraping_success_count"
	MetricFailure      = "scraping_failure_count"
	MetricDuration     = "scraping_duration_ms"
	MetricCircuitState = "circuit_state"
	// MetricSessionInvalid counts rejected sessions, in total and per
	// CreatorId (a paused creator's messages wait for a new session).
	MetricSessionInvalid = "session_invalid"
	// MetricDeadLetterFailed counts moves to the DLQ that failed (the
	// message stays in its queue and is decided again later): persistent,
	// it lets receives run towards the queue's maxReceiveCount backstop.
	MetricDeadLetterFailed = "dead_letter_failed"
	// MetricDeliveryLatency is accepted (API) → sent (site), per message
	// sent, with dimension Backlog = none | queued.
	MetricDeliveryLatency = "delivery_latency_ms"
)
