package infra

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	api "github.com/huntaze/message-pipeline/functions/api/handler"
	limiter "github.com/huntaze/message-pipeline/functions/ratelimiter/handler"
	"github.com/huntaze/message-pipeline/internal/metrics"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
)

// Alarm thresholds (seed 003 R5, R6.4; issue 15 for the rest).
const (
	OldestMessageAlarmSeconds = 600
	BacklogAlarmMessages      = 500
	LimiterErrorsAlarm        = 10
	ScraperCPUAlarmPercent    = 70
	// IntakeOldestAlarmSeconds: an hour in the intake queue is a backlog
	// of 600 messages for one creator, or a limiter that does not run.
	IntakeOldestAlarmSeconds = 3600
	// ScraperSuccessRateAlarm (percent of sends that succeed, over 5
	// minutes with at least 10 outcomes).
	ScraperSuccessRateAlarm = 90
	// APIFailureRateAlarm (percent of accepted messages SQS refused, kept
	// in the fallback table, over 5 minutes).
	APIFailureRateAlarm = 5
	// DeliveryLatencyP95AlarmMs: p95 accepted → sent of creators without
	// a backlog (docs/operations.md: the latency SLO).
	DeliveryLatencyP95AlarmMs = 120_000
	// APILatencyP95AlarmMs: p95 of the HTTP API (a send is one SQS call,
	// rarely a DynamoDB one; the function's timeout is 15 s).
	APILatencyP95AlarmMs = 3000
	// ReplayExpectedPeriodMinutes: the replay runs every 5 minutes, so no
	// invocation in 15 means its schedule or the function is gone.
	ReplayExpectedPeriodMinutes = 15
)

// AlarmsProps wires the alarms.
type AlarmsProps struct {
	Env       Environment
	Queues    *Queues
	Functions *Functions
	Scraper   *ScraperService
	Cache     *Cache
	// Credentials: the session health check, on the dashboard.
	Credentials *Credentials
}

// Alarms are the alarms, their topic and the dashboard.
type Alarms struct {
	constructs.Construct
	Topic     awssns.ITopic
	Alarms    map[string]awscloudwatch.Alarm
	Dashboard awscloudwatch.Dashboard
}

// NewAlarms creates the alarms of the seeds and of every silent failure,
// each notifying the environment's alerts topic when it fires and when it
// recovers, and a dashboard.
func NewAlarms(scope constructs.Construct, id string, props AlarmsProps) *Alarms {
	c := constructs.NewConstruct(scope, jsii.String(id))
	topic := NewAlertTopic(c, "Alerts", AlertTopicProps{Env: props.Env}).Topic
	action := awscloudwatchactions.NewSnsAction(topic)
	a := &Alarms{Construct: c, Topic: topic, Alarms: map[string]awscloudwatch.Alarm{}}
	alarm := func(name, description string, metric awscloudwatch.IMetric, threshold float64, periods float64, cmp awscloudwatch.ComparisonOperator, missing awscloudwatch.TreatMissingData) {
		alarm := awscloudwatch.NewAlarm(c, jsii.String(name), &awscloudwatch.AlarmProps{
			Metric:             metric,
			AlarmName:          jsii.String(fmt.Sprintf("huntaze-%s-%s", props.Env.Name, name)),
			AlarmDescription:   jsii.String(description + " See docs/runbook.md#" + name),
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(periods),
			ComparisonOperator: cmp,
			TreatMissingData:   missing,
		})
		// The OK action tells whoever was paged that it is over.
		alarm.AddAlarmAction(action)
		alarm.AddOkAction(action)
		a.Alarms[name] = alarm
	}
	// add: an alarm on a signal that is absent while all is well.
	add := func(name, description string, metric awscloudwatch.IMetric, threshold float64, periods float64, cmp awscloudwatch.ComparisonOperator) {
		alarm(name, description, metric, threshold, periods, cmp, awscloudwatch.TreatMissingData_NOT_BREACHING)
	}
	// expect: an alarm on traffic that must be there; no data is the failure.
	expect := func(name, description string, metric awscloudwatch.IMetric, threshold float64, periods float64) {
		alarm(name, description, metric, threshold, periods, awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD, awscloudwatch.TreatMissingData_BREACHING)
	}
	min1, min5 := awscdk.Duration_Minutes(jsii.Number(1)), awscdk.Duration_Minutes(jsii.Number(5))
	gt, gte, lt := awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD
	q := props.Queues
	custom := func(name, statistic string, period awscdk.Duration, dims map[string]*string) awscloudwatch.Metric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String(metrics.Namespace), MetricName: jsii.String(name), Statistic: jsii.String(statistic),
			Period: period, DimensionsMap: &dims,
		})
	}
	dims := func(service string, extra ...string) map[string]*string {
		d := map[string]*string{"Service": jsii.String(service), "Environment": jsii.String(props.Env.Name)}
		for i := 0; i+1 < len(extra); i += 2 {
			d[extra[i]] = jsii.String(extra[i+1])
		}
		return d
	}
	limiterDims, scraperDims, apiDims := dims("rate-limiter"), dims("scraper"), dims("api")

	// The seed's alarms, exactly as specified.
	add("fifo-oldest-message", "Workflows FIFO: oldest message older than 600 s (scraper delayed).",
		q.Workflows.MetricApproximateAgeOfOldestMessage(&awscloudwatch.MetricOptions{Period: min1, Statistic: jsii.String("Maximum")}),
		OldestMessageAlarmSeconds, 1, gt)
	add("fifo-backlog", "Workflows FIFO: more than 500 visible messages (backlog).",
		q.Workflows.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: min1, Statistic: jsii.String("Maximum")}),
		BacklogAlarmMessages, 1, gt)
	add("limiter-errors", "Rate limiter Lambda: more than 10 errors in 5 minutes.",
		props.Functions.Limiter.Function.MetricErrors(&awscloudwatch.MetricOptions{Period: min5, Statistic: jsii.String("Sum")}),
		LimiterErrorsAlarm, 1, gt)
	add("scraper-cpu", "Scraper: CPU above 70 % for 10 minutes (right-size the task).",
		props.Scraper.Service.MetricCpuUtilization(&awscloudwatch.MetricOptions{Period: min5, Statistic: jsii.String("Average")}),
		ScraperCPUAlarmPercent, 2, gt)
	// Any message dead-lettered, in either DLQ.
	for name, dlq := range map[string]awssqs.Queue{"rate-limiter-dlq": q.RateLimiterDLQ, "workflows-dlq": q.WorkflowsDLQ} {
		add(name+"-not-empty", "A dead-letter queue holds messages: inspect, fix, redrive.",
			dlq.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: min1, Statistic: jsii.String("Maximum")}),
			0, 1, gt)
	}

	// Real signals: the limiter's handler answers per record and never
	// fails its invocation, so Lambda Errors does not see Redis or forward
	// failures; its own metrics do.
	add("limiter-redis-errors", "Rate limiter: Redis errors 3 minutes in a row (messages wait, fail closed).",
		custom(limiter.MetricRedisErrors, "Sum", min1, limiterDims), 0, 3, gt)
	add("limiter-forward-failures", "Rate limiter: approved messages not forwarded to the workflows FIFO 3 minutes in a row.",
		custom(limiter.MetricForwardFailures, "Sum", min1, limiterDims), 0, 3, gt)
	add("intake-oldest-message", "Intake FIFO: a message has waited more than an hour for the rate limiter.",
		q.RateLimiter.MetricApproximateAgeOfOldestMessage(&awscloudwatch.MetricOptions{Period: min5, Statistic: jsii.String("Maximum")}),
		IntakeOldestAlarmSeconds, 1, gt)
	add("scraper-session-invalid", "Scraper: OnlyFans rejected a creator's session; that creator is paused until the session is renewed.",
		custom(scrapersettings.MetricSessionInvalid, "Sum", min5, scraperDims), 0, 1, gt)
	// A move to the DLQ that fails leaves the message in its queue, tried
	// again after the outage delay; about 10 days of it and SQS's redrive
	// would move the message without a reason. Any failed move pages.
	add("scraper-dead-letter-failed", "Scraper: a move to the workflows DLQ failed (DLQ key or policy broken); the message waits in its queue.",
		custom(scrapersettings.MetricDeadLetterFailed, "Sum", min5, scraperDims), 0, 1, gt)
	add("scraper-breaker-open", "Scraper: circuit breaker open 5 minutes in a row (OnlyFans failing; sends paused).",
		custom(scrapersettings.MetricCircuitState, "Maximum", min1, scraperDims), 2, 5, gte)
	successRate := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("IF(s + f >= 10, 100 * s / (s + f), 100)"), Label: jsii.String("scraping_success_rate"), Period: min5,
		UsingMetrics: &map[string]awscloudwatch.IMetric{"s": custom(scrapersettings.MetricSuccess, "Sum", min5, scraperDims), "f": custom(scrapersettings.MetricFailure, "Sum", min5, scraperDims)},
	})
	add("scraper-success-rate", "Scraper: under 90 % of sends succeed, 15 minutes in a row (with at least 10 outcomes per 5 minutes).",
		successRate, ScraperSuccessRateAlarm, 3, lt)
	apiFailureRate := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("IF(q + fb > 0, 100 * fb / (q + fb), 0)"), Label: jsii.String("api_failure_rate"), Period: min5,
		UsingMetrics: &map[string]awscloudwatch.IMetric{"q": custom(api.MetricQueued, "Sum", min5, apiDims), "fb": custom(api.MetricFallback, "Sum", min5, apiDims)},
	})
	add("api-failure-rate", "API: more than 5 % of accepted messages went to the fallback table (SQS refused them) for 10 minutes.",
		apiFailureRate, APIFailureRateAlarm, 2, gt)
	latencyP95 := custom(scrapersettings.MetricDeliveryLatency, "p95", min5, dims("scraper", "Backlog", "none"))
	add("delivery-latency-p95", "Messages of creators without a backlog: p95 from accepted to sent above 2 minutes for 15 minutes.",
		latencyP95, DeliveryLatencyP95AlarmMs, 3, gt)

	// A dead API: the failure rate above reads 0 without traffic, so the
	// API's own failures are alarmed: function errors (crash, timeout, bad
	// settings) and throttles, API Gateway 5xx (an integration that cannot
	// reach the function too) for two 5-minute periods in a row, whatever
	// the traffic, and latency.
	apiFn, httpAPI := props.Functions.API.Function, props.Functions.HTTPAPI
	add("api-lambda-errors", "API Lambda: invocation errors (crash, timeout, init failure) 10 minutes in a row.",
		apiFn.MetricErrors(&awscloudwatch.MetricOptions{Period: min5, Statistic: jsii.String("Sum")}), 0, 2, gt)
	add("api-lambda-throttles", "API Lambda: throttled invocations (account or reserved concurrency exhausted).",
		apiFn.MetricThrottles(&awscloudwatch.MetricOptions{Period: min5, Statistic: jsii.String("Sum")}), 0, 1, gt)
	add("api-5xx", "HTTP API: 5xx answers 10 minutes in a row (the web app's sends fail).",
		httpAPI.MetricServerError(&awscloudwatch.MetricOptions{Period: min5, Statistic: jsii.String("Sum")}), 0, 2, gt)
	add("api-latency-p95", "HTTP API: p95 latency above 3 s for 15 minutes.",
		httpAPI.MetricLatency(&awscloudwatch.MetricOptions{Period: min5, Statistic: jsii.String("p95")}), APILatencyP95AlarmMs, 3, gt)

	// The replay empties the fallback table every 5 minutes: its errors,
	// and its silence (a deleted schedule or function) are failures.
	replayFn := props.Functions.Replay.Function
	add("replay-errors", "Fallback replay Lambda: failed runs 10 minutes in a row (fallback messages are not replayed).",
		replayFn.MetricErrors(&awscloudwatch.MetricOptions{Period: min5, Statistic: jsii.String("Sum")}), 0, 2, gt)
	expect("replay-not-running", "Fallback replay Lambda: not invoked for 15 minutes (its 5-minute schedule does not run).",
		replayFn.MetricInvocations(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(ReplayExpectedPeriodMinutes)), Statistic: jsii.String("Sum")}), 1, 1)

	// Secret rotations run every 90 days: a failure leaves the rotation
	// pending and is otherwise seen by nobody.
	add("redis-auth-rotation-errors", "Redis AUTH token rotation Lambda failed (the token was not rotated).",
		props.Cache.Rotation.Function.MetricErrors(&awscloudwatch.MetricOptions{Period: min5, Statistic: jsii.String("Sum")}), 0, 1, gt)
	// The session health check's own failures are part of
	// session-renewal-due (infra/session_health.go).

	// The scraper always runs at least ScraperMinTasks: none running (Spot
	// and On-Demand together) for 10 minutes is a dead consumer, seen here
	// before any message waits long enough for fifo-oldest-message.
	runningTasks := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("FILL(spot, 0) + FILL(fallback, 0)"), Label: jsii.String("scraper_running_tasks"), Period: min1,
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"spot": runningTaskCount(props.Scraper.Cluster, props.Scraper.Service), "fallback": runningTaskCount(props.Scraper.Cluster, props.Scraper.Fallback),
		},
	})
	expect("scraper-no-running-tasks", "Scraper: fewer running tasks than the service's minimum (Spot and On-Demand together) for 10 minutes.",
		runningTasks, float64(props.Env.ScraperMinTasks), 10)

	a.Dashboard = newDashboard(c, props, dashboardMetrics{
		custom:  func(name, stat string, d map[string]*string) awscloudwatch.Metric { return custom(name, stat, min5, d) },
		limiter: limiterDims, scraper: scraperDims, api: apiDims, successRate: successRate, apiFailureRate: apiFailureRate,
		latency: func(stat, backlog string) awscloudwatch.IMetric {
			return custom(scrapersettings.MetricDeliveryLatency, stat, min5, dims("scraper", "Backlog", backlog))
		},
	})
	return a
}

// runningTaskCount is a service's running tasks (Container Insights, 1 minute).
func runningTaskCount(cluster awsecs.Cluster, service awsecs.FargateService) awscloudwatch.Metric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String("ECS/ContainerInsights"), MetricName: jsii.String("RunningTaskCount"), Statistic: jsii.String("Maximum"), Period: awscdk.Duration_Minutes(jsii.Number(1)),
		DimensionsMap: &map[string]*string{"ClusterName": cluster.ClusterName(), "ServiceName": service.ServiceName()},
	})
}
