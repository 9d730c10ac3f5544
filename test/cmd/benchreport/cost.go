package main

import (
	"fmt"
	"strings"
)

// Prices (us-east-1, list prices checked 2026-11; Spot varies by hour).
const (
	sqsFIFOPerM   = 0.50         // USD per million requests
	lambdaGBs     = 0.0000133334 // arm64, USD per GB-second
	lambdaReqPerM = 0.20
	s3PutPerK     = 0.005
	spotVCPUHour  = 0.01245
	spotGBHour    = 0.00137
	cacheT4gMicro = 0.016 // USD per hour, dev; prod r7g.large ×2 ≈ 0.437/h
	ddbWRUPerM    = 0.625 // on-demand, USD per million write request units
	ddbRRUPerM    = 0.125 // on-demand, USD per million read request units
)

// costModel computes the cost of one million messages from request counts
// per message (measured receives per forwarded message; the API's calls
// per message counted for single-message requests, the costlier shape;
// batch sizes of the code) and the listed assumptions.
func costModel(receivesPerMessage float64, apiF apiFigures, task taskFigures, calls []callCounts) string {
	const m = 1_000_000.0
	single := calls[0]
	apiSQS := single.sqsCalls()
	wru, rru := single.dynamoDBUnits()
	ddb := m*wru/1e6*ddbWRUPerM + m*rru/1e6*ddbRRUPerM
	// Intake queue (FIFO since the intake fix): the API's sends (counted), the
	// Lambda poller's receives (batches of up to 10: receivesPerMessage/10
	// calls per message, plus empty polls, ignored), one batch delete per
	// batch, and one ChangeMessageVisibilityBatch per batch with denials.
	limiterRequests := m*apiSQS + m*receivesPerMessage/10 + m/10 + m*(receivesPerMessage-1)/10
	// FIFO: one SendMessageBatch per 10 forwarded, scraper receives (fauxqs
	// and AWS hand at most 10 per call; assume 5 per call under load), one
	// delete per message.
	fifoRequests := m/10 + m/5 + m
	// Lambda: limiter invocations (one per batch received), 256 MB, 50 ms
	// each; API one invocation per message (single-message requests),
	// 256 MB, 20 ms (durations assumed, not measured here).
	limiterInvocations := m * receivesPerMessage / 10
	lambdaSeconds := limiterInvocations*0.050*0.25 + m*0.020*0.25
	lambdaCost := lambdaSeconds*lambdaGBs + (limiterInvocations+m)/1e6*lambdaReqPerM
	// Fargate Spot, throughput-bound: task-hours = messages / the sends
	// per task-hour measured above (40 creators, 1 vCPU, chats switched
	// inside the single-page app).
	taskHours := m / (task.sendsPerMinute * 60)
	fargate := taskHours * (1*spotVCPUHour + 2*spotGBHour)
	// Results: one JSON-lines object per flush, every 60 s or 1,000
	// records, whichever comes first, per task.
	recordsPerPut := min(1000, task.sendsPerMinute)
	puts := m / recordsPerPut
	s3 := puts / 1000 * s3PutPerK
	sqsCost := limiterRequests/1e6*sqsFIFOPerM + fifoRequests/1e6*sqsFIFOPerM
	total := sqsCost + lambdaCost + fargate + s3 + ddb
	var b strings.Builder
	fmt.Fprintf(&b, "## Cost model per 1,000,000 messages\n\n| item | requests / units | USD |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| SQS FIFO intake (API sends at %.2f per message counted, limiter receives at %.2f per message, deletes, visibility changes) | %.2f M requests | %.2f |\n", apiSQS, receivesPerMessage, limiterRequests/1e6, limiterRequests/1e6*sqsFIFOPerM)
	fmt.Fprintf(&b, "| SQS FIFO (batch forwards, scraper receives, deletes) | %.2f M requests | %.2f |\n", fifoRequests/1e6, fifoRequests/1e6*sqsFIFOPerM)
	fmt.Fprintf(&b, "| Lambda (API one invocation per message, 20 ms; limiter one per received batch of 10, 50 ms; 256 MB arm64) | %.0f GB-s, %.2f M invocations | %.2f |\n", lambdaSeconds, (limiterInvocations+m)/1e6, lambdaCost)
	fmt.Fprintf(&b, "| DynamoDB on-demand (API: caller counter, creator quota, fallback backlog read; counted: %.0f write + %.0f read units per message) | %.2f M WRU, %.2f M RRU | %.2f |\n", wru, rru, wru, rru, ddb)
	fmt.Fprintf(&b, "| Fargate Spot (1 vCPU, 2 GB, %.0f sends/min/task measured, 40 creators, chats switched inside the single-page app) | %.0f task-hours | %.2f |\n", task.sendsPerMinute, taskHours, fargate)
	fmt.Fprintf(&b, "| S3 result records (one JSON-lines PUT per flush, %.0f records each) | %.0f PUT | %.2f |\n", recordsPerPut, puts, s3)
	fmt.Fprintf(&b, "| **total, variable** | | **%.2f** (target ≤ 2.00: %s; before batching and with the intake priced as standard: 7.39) |\n\n", total, map[bool]string{true: "met", false: "**missed**"}[total <= 2.00])
	fmt.Fprintf(&b, "Fixed per environment and month, not per message: ElastiCache (dev cache.t4g.micro ≈ %.0f USD; prod 2 × cache.r7g.large ≈ 320 USD), NAT gateways (≈ 33 USD each + data), interface endpoints (5 × 2 AZ ≈ 73 USD), the minimum scraper task on Spot (≈ %.0f USD). Assumptions: list prices above; empty receives, KMS requests (≈ 1 per FIFO call with data key caching) and CloudWatch logs are not counted; the API's measured throughput here (%.0f/s) is not a cost driver.\n", cacheT4gMicro*730, (1*spotVCPUHour+2*spotGBHour)*730, apiF.api.perSecond)
	return b.String()
}
