package infra

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	api "github.com/huntaze/message-pipeline/functions/api/handler"
	limiter "github.com/huntaze/message-pipeline/functions/ratelimiter/handler"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/queuedepth"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
)

// dashboardMetrics are the metrics the alarms built, shared with the
// dashboard so both read the same definitions.
type dashboardMetrics struct {
	custom                      func(name, stat string, dims map[string]*string) awscloudwatch.Metric
	limiter, scraper, api       map[string]*string
	successRate, apiFailureRate awscloudwatch.MathExpression
	latency                     func(stat, backlog string) awscloudwatch.IMetric
}

// newDashboard shows the pipeline as a user thinks of it: accepted →
// approved → sent, what waits, what failed and why, how long a creator's
// messages take, Redis, and the scraper's Spot and On-Demand tasks.
func newDashboard(c constructs.Construct, props AlarmsProps, m dashboardMetrics) awscloudwatch.Dashboard {
	q := props.Queues
	min5 := awscdk.Duration_Minutes(jsii.Number(5))
	graph := func(title string, width float64, left, right []awscloudwatch.IMetric) awscloudwatch.GraphWidget {
		p := &awscloudwatch.GraphWidgetProps{Title: jsii.String(title), Width: jsii.Number(width), Left: &left}
		if right != nil {
			p.Right = &right
		}
		return awscloudwatch.NewGraphWidget(p)
	}
	labelled := func(metric awscloudwatch.Metric, label string) awscloudwatch.IMetric {
		return metric.With(&awscloudwatch.MetricOptions{Label: jsii.String(label)})
	}
	// Seed 003 R5.4 and 000 R5.4 names: expressions over the counts.
	averageDuration := labelled(m.custom(scrapersettings.MetricDuration, "Average", m.scraper), "average_scraping_duration")
	apiSuccessRate := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("100 - apifail"), Label: jsii.String("api_success_rate"), Period: min5,
		UsingMetrics: &map[string]awscloudwatch.IMetric{"apifail": m.apiFailureRate},
	})
	queueDepth := func(name string) awscloudwatch.IMetric {
		return labelled(m.custom(queuedepth.MetricQueueDepth, "Maximum", map[string]*string{"Service": jsii.String("api"), "Environment": jsii.String(props.Env.Name), "Queue": jsii.String(name)}), "queue_depth "+name)
	}
	tasks := func(service *string, label string) awscloudwatch.IMetric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String("ECS/ContainerInsights"), MetricName: jsii.String("RunningTaskCount"), Statistic: jsii.String("Maximum"), Period: awscdk.Duration_Minutes(jsii.Number(1)),
			DimensionsMap: &map[string]*string{"ClusterName": props.Scraper.Cluster.ClusterName(), "ServiceName": service}, Label: jsii.String(label),
		})
	}
	failedByReason := awscloudwatch.NewLogQueryWidget(&awscloudwatch.LogQueryWidgetProps{
		Title: jsii.String("Dead-lettered by reason (both DLQs)"), Width: jsii.Number(12),
		LogGroupNames: &[]*string{props.Scraper.Logs.LogGroupName(), props.Functions.Limiter.Function.LogGroup().LogGroupName()},
		QueryLines: jsii.Strings(
			`filter msg = "invalid record moved to the DLQ" or status = "dead_lettered"`,
			`fields coalesce(failure_reason, concat("scraper: ", error_class, " ", http_status)) as reason`,
			`stats count(*) as messages by reason`, `sort messages desc`),
	})
	perCreator := awscloudwatch.NewLogQueryWidget(&awscloudwatch.LogQueryWidgetProps{
		Title: jsii.String("Accepted → sent per creator (slowest 20, p95)"), Width: jsii.Number(12),
		LogGroupNames: &[]*string{props.Scraper.Logs.LogGroupName()},
		QueryLines: jsii.Strings(`filter ispresent(delivery_latency_ms) and status = "sent"`,
			`stats pct(delivery_latency_ms, 95) as p95_ms, pct(delivery_latency_ms, 50) as p50_ms, count(*) as sent by creator_id, backlog`,
			`sort p95_ms desc`, `limit 20`),
	})
	d := awscloudwatch.NewDashboard(c, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{DashboardName: jsii.String("huntaze-pipeline-" + props.Env.Name)})
	d.AddWidgets(
		graph("Accepted → approved → sent (per 5 min)", 12, []awscloudwatch.IMetric{
			labelled(m.custom(api.MetricQueued, "Sum", m.api), "accepted (queued)"),
			labelled(m.custom(api.MetricFallback, "Sum", m.api), "accepted (fallback table)"),
			labelled(m.custom(limiter.MetricAllowed, "Sum", m.limiter), "approved"),
			labelled(m.custom(scrapersettings.MetricSuccess, "Sum", m.scraper), "sent"),
		}, nil),
		graph("Waiting", 12, []awscloudwatch.IMetric{
			q.RateLimiter.MetricApproximateNumberOfMessagesVisible(nil), q.Workflows.MetricApproximateNumberOfMessagesVisible(nil),
			queueDepth("intake"), queueDepth("workflows"),
		}, []awscloudwatch.IMetric{
			q.RateLimiter.MetricApproximateAgeOfOldestMessage(nil), q.Workflows.MetricApproximateAgeOfOldestMessage(nil),
		}),
	)
	d.AddWidgets(
		graph("Failed", 12, []awscloudwatch.IMetric{
			awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
				Expression: jsii.String(fmt.Sprintf(`SEARCH('{%s,Service,Environment,ErrorClass} MetricName="%s" Environment="%s"', 'Sum', 300)`, metrics.Namespace, scrapersettings.MetricFailure, props.Env.Name)),
				Label:      jsii.String("scraping failures by class"), Period: min5,
			}),
			labelled(m.custom(limiter.MetricPoison, "Sum", m.limiter), "invalid payloads (limiter)"),
			q.RateLimiterDLQ.MetricApproximateNumberOfMessagesVisible(nil), q.WorkflowsDLQ.MetricApproximateNumberOfMessagesVisible(nil),
		}, nil),
		failedByReason,
	)
	d.AddWidgets(
		graph("Accepted → sent (ms)", 12, []awscloudwatch.IMetric{
			m.latency("p50", "none"), m.latency("p95", "none"), m.latency("p95", "queued"),
		}, nil),
		perCreator,
	)
	d.AddWidgets(
		graph("Success rates (%) and scraping duration", 12, []awscloudwatch.IMetric{m.successRate, apiSuccessRate, m.apiFailureRate}, []awscloudwatch.IMetric{averageDuration}),
		graph("Redis and the breaker", 12, []awscloudwatch.IMetric{
			labelled(m.custom(limiter.MetricRedisErrors, "Sum", m.limiter), "limiter redis_errors"),
			labelled(m.custom(limiter.MetricFenced, "Sum", m.limiter), "limiter fenced (Redis came back empty)"),
			labelled(m.custom(limiter.MetricForwardFailures, "Sum", m.limiter), "forward_failures"),
		}, []awscloudwatch.IMetric{labelled(m.custom(scrapersettings.MetricCircuitState, "Maximum", m.scraper), "circuit (0 closed, 1 half-open, 2 open)")}),
	)
	d.AddWidgets(
		graph("Scraper tasks: Spot vs On-Demand fallback", 12, []awscloudwatch.IMetric{
			tasks(props.Scraper.Service.ServiceName(), "Spot service"), tasks(props.Scraper.Fallback.ServiceName(), "On-Demand fallback"),
		}, nil),
		graph("Sessions rejected", 12, []awscloudwatch.IMetric{
			labelled(m.custom(scrapersettings.MetricSessionInvalid, "Sum", m.scraper), "session_invalid (all creators)"),
			awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
				Expression: jsii.String(fmt.Sprintf(`SEARCH('{%s,Service,Environment,CreatorId} MetricName="%s" Environment="%s"', 'Sum', 300)`, metrics.Namespace, scrapersettings.MetricSessionInvalid, props.Env.Name)),
				Label:      jsii.String("by creator"), Period: min5,
			}),
		}, nil),
	)
	sum5 := &awscloudwatch.MetricOptions{Period: min5, Statistic: jsii.String("Sum")}
	apiFn, httpAPI, replayFn := props.Functions.API.Function, props.Functions.HTTPAPI, props.Functions.Replay.Function
	d.AddWidgets(
		graph("HTTP API: failures and latency", 12, []awscloudwatch.IMetric{
			labelled(httpAPI.MetricServerError(sum5), "5xx"), labelled(httpAPI.MetricClientError(sum5), "4xx"),
			labelled(apiFn.MetricErrors(sum5), "function errors"), labelled(apiFn.MetricThrottles(sum5), "function throttles"),
		}, []awscloudwatch.IMetric{labelled(httpAPI.MetricLatency(&awscloudwatch.MetricOptions{Period: min5, Statistic: jsii.String("p95")}), "latency p95 (ms)")}),
		graph("Replay, rotation and session health", 12, []awscloudwatch.IMetric{
			labelled(replayFn.MetricInvocations(sum5), "replay runs"), labelled(replayFn.MetricErrors(sum5), "replay errors"),
			labelled(props.Cache.Rotation.Function.MetricErrors(sum5), "Redis AUTH rotation errors"),
			labelled(props.Credentials.Health.Function.MetricErrors(sum5), "session health check errors"),
		}, nil),
	)
	return d
}
