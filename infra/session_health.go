package infra

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/huntaze/message-pipeline/functions/rotation/rotator"
	"github.com/huntaze/message-pipeline/internal/metrics"
)

// SessionRenewalAlarm names the alarm of the session health check.
const SessionRenewalAlarm = "session-renewal-due"

// newSessionHealthAlarm fires when a check finds a session due for renewal
// or broken, or when the check itself fails (the Lambda's errors) or does
// not run at all (missing data breaches): a check that cannot run must not
// look like healthy sessions. It notifies the
// alerts topic like every alarm and joins alarms.Alarms.
func newSessionHealthAlarm(scope constructs.Construct, env Environment, creds *Credentials, alarms *Alarms) awscloudwatch.Alarm {
	period := awscdk.Duration_Hours(jsii.Number(SessionHealthEveryHours))
	unhealthy := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String(metrics.Namespace), MetricName: jsii.String(rotator.MetricSessionsUnhealthy), Statistic: jsii.String("Maximum"), Period: period,
		DimensionsMap: &map[string]*string{"Service": jsii.String("session-health"), "Environment": jsii.String(env.Name)},
	})
	errs := creds.Health.Function.MetricErrors(&awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("Sum")})
	expr := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("FILL(u, 0) + FILL(e, 0)"), Label: jsii.String("sessions_unhealthy"), Period: period,
		UsingMetrics: &map[string]awscloudwatch.IMetric{"u": unhealthy, "e": errs},
	})
	alarm := awscloudwatch.NewAlarm(scope, jsii.String("SessionRenewalDue"), &awscloudwatch.AlarmProps{
		Metric:    expr,
		AlarmName: jsii.String(fmt.Sprintf("huntaze-%s-%s", env.Name, SessionRenewalAlarm)),
		AlarmDescription: jsii.String(fmt.Sprintf("OnlyFans sessions: one is %d days old or older (renew before 90, seed 003 R8.5), broken, or has a rotation attached; or the check failed. See docs/runbook.md#%s",
			int(rotator.DefaultSessionRenewAfter.Hours()/24), SessionRenewalAlarm)),
		Threshold: jsii.Number(0), EvaluationPeriods: jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		// No data means no check ran (schedule disabled, function deleted):
		// that must not look like healthy sessions.
		TreatMissingData: awscloudwatch.TreatMissingData_BREACHING,
	})
	alarm.AddAlarmAction(awscloudwatchactions.NewSnsAction(alarms.Topic))
	alarm.AddOkAction(awscloudwatchactions.NewSnsAction(alarms.Topic))
	alarms.Alarms[SessionRenewalAlarm] = alarm
	return alarm
}
