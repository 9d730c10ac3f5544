package infra

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	limiter "github.com/huntaze/message-pipeline/functions/ratelimiter/handler"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/scraper"
)

// Alarm thresholds (seed 003 R5, R6.4).
const (
	OldestMessageAlarmSeconds = 600
	BacklogAlarmMessages      = 500
	LimiterErrorsAlarm        = 10
	ScraperCPUAlarmPercent    = 70
)

// AlarmsProps wires the alarms.
type AlarmsProps struct {
	Env       Environment
	Queues    *Queues
	Functions *Functions
	Scraper   *ScraperService
}

// Alarms are the alarms, their topic and the dashboard.
type Alarms struct {
	constructs.Construct
	Topic     awssns.ITopic
	Alarms    map[string]awscloudwatch.Alarm
	Dashboard awscloudwatch.Dashboard
}

// NewAlarms creates the alarms of the seeds, all notifying
// huntaze-cost-alerts (imported when it exists), and a dashboard.
func NewAlarms(scope constructs.Construct, id string, props AlarmsProps) *Alarms {
	c := constructs.NewConstruct(scope, jsii.String(id))
	stack := awscdk.Stack_Of(c)
	var topic awssns.ITopic
	if props.Env.AlertTopicExists {
		topic = awssns.Topic_FromTopicArn(c, jsii.String("Topic"), jsii.String(fmt.Sprintf("arn:%s:sns:%s:%s:%s", *stack.Partition(), *stack.Region(), *stack.Account(), AlertTopicName)))
	} else {
		key := awskms.NewKey(c, jsii.String("TopicKey"), &awskms.KeyProps{Description: jsii.String("Encrypts the alerts topic"), EnableKeyRotation: jsii.Bool(true)})
		// CloudWatch must be able to publish to an encrypted topic.
		key.GrantEncryptDecrypt(awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil))
		topic = awssns.NewTopic(c, jsii.String("Topic"), &awssns.TopicProps{TopicName: jsii.String(AlertTopicName), MasterKey: key, EnforceSSL: jsii.Bool(true)})
	}
	action := awscloudwatchactions.NewSnsAction(topic)
	a := &Alarms{Construct: c, Topic: topic, Alarms: map[string]awscloudwatch.Alarm{}}
	add := func(name, description string, metric awscloudwatch.Metric, threshold float64, periods float64, cmp awscloudwatch.ComparisonOperator) {
		alarm := metric.CreateAlarm(c, jsii.String(name), &awscloudwatch.CreateAlarmOptions{
			AlarmName:          jsii.String(fmt.Sprintf("huntaze-%s-%s", props.Env.Name, name)),
			AlarmDescription:   jsii.String(description + " See docs/runbook.md#" + name),
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(periods),
			ComparisonOperator: cmp,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		alarm.AddAlarmAction(action)
		a.Alarms[name] = alarm
	}
	min5 := awscdk.Duration_Minutes(jsii.Number(5))
	q := props.Queues
	add("fifo-oldest-message", "Workflows FIFO: oldest message older than 600 s (scraper delayed).",
		q.Workflows.MetricApproximateAgeOfOldestMessage(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Maximum")}),
		OldestMessageAlarmSeconds, 1, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD)
	add("fifo-backlog", "Workflows FIFO: more than 500 visible messages (backlog).",
		q.Workflows.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Maximum")}),
		BacklogAlarmMessages, 1, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD)
	add("limiter-errors", "Rate limiter Lambda: more than 10 errors in 5 minutes.",
		props.Functions.Limiter.Function.MetricErrors(&awscloudwatch.MetricOptions{Period: min5, Statistic: jsii.String("Sum")}),
		LimiterErrorsAlarm, 1, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD)
	add("scraper-cpu", "Scraper: CPU above 70 % for 10 minutes (right-size the task).",
		props.Scraper.Service.MetricCpuUtilization(&awscloudwatch.MetricOptions{Period: min5, Statistic: jsii.String("Average")}),
		ScraperCPUAlarmPercent, 2, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD)
	for name, dlq := range map[string]awssqs.Queue{"rate-limiter-dlq": q.RateLimiterDLQ, "workflows-dlq": q.WorkflowsDLQ} {
		add(name+"-not-empty", "A dead-letter queue holds messages: inspect, fix, redrive.",
			dlq.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Maximum")}),
			0, 1, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD)
	}

	custom := func(name, statistic string, dims map[string]*string) awscloudwatch.Metric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String(metrics.Namespace), MetricName: jsii.String(name), Statistic: jsii.String(statistic),
			Period: awscdk.Duration_Minutes(jsii.Number(1)), DimensionsMap: &dims,
		})
	}
	limiterDims := map[string]*string{"Service": jsii.String("rate-limiter"), "Environment": jsii.String(props.Env.Name)}
	scraperDims := map[string]*string{"Service": jsii.String("scraper"), "Environment": jsii.String(props.Env.Name)}
	a.Dashboard = awscloudwatch.NewDashboard(c, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{DashboardName: jsii.String("huntaze-pipeline-" + props.Env.Name)})
	a.Dashboard.AddWidgets(
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String("Queue depth (visible)"), Width: jsii.Number(12), Left: &[]awscloudwatch.IMetric{
			q.RateLimiter.MetricApproximateNumberOfMessagesVisible(nil), q.Workflows.MetricApproximateNumberOfMessagesVisible(nil),
			q.RateLimiterDLQ.MetricApproximateNumberOfMessagesVisible(nil), q.WorkflowsDLQ.MetricApproximateNumberOfMessagesVisible(nil),
		}}),
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String("Rate limiter decisions"), Width: jsii.Number(12), Left: &[]awscloudwatch.IMetric{
			custom(limiter.MetricAllowed, "Sum", limiterDims), custom(limiter.MetricRejected, "Sum", limiterDims), custom(limiter.MetricRedisErrors, "Sum", limiterDims),
		}}),
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String("Scraping"), Width: jsii.Number(12),
			Left:  &[]awscloudwatch.IMetric{custom(scraper.MetricSuccess, "Sum", scraperDims)},
			Right: &[]awscloudwatch.IMetric{custom(scraper.MetricDuration, "Average", scraperDims)}}),
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String("Circuit state (0 closed, 1 half-open, 2 open)"), Width: jsii.Number(12),
			Left: &[]awscloudwatch.IMetric{custom(scraper.MetricCircuitState, "Maximum", scraperDims)}}),
	)
	return a
}
