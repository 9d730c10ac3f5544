package infra

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

func TestEachEnvironmentsAlarmsReachItsConfiguredPeople(t *testing.T) {
	for _, name := range EnvironmentNames() {
		// GIVEN the environment's configuration and pipeline stack
		env, _ := LookupEnvironment(name)
		st := system(t, name).Pipeline.Stack
		topicArn := js(st.Resolve(system(t, name).Pipeline.Alarms.Topic.TopicArn()))
		topics := resources(t, st, "AWS::SNS::Topic")
		if name == "prod" {
			// THEN prod creates no topic: it imports huntaze-cost-alerts
			if len(topics) != 0 || !strings.Contains(topicArn, ":"+AlertTopicName+`"`) {
				t.Errorf("prod: topics %v, alarms notify %s; want the existing %s", topics, topicArn, AlertTopicName)
			}
		} else {
			// THEN the others create an encrypted topic named after the environment
			topic := only(t, topics, name+" alerts topic")
			if topic["TopicName"] != AlertTopicName+"-"+name || topic["KmsMasterKeyId"] == nil {
				t.Errorf("%s topic %v, want %s-%s, encrypted", name, topic, AlertTopicName, name)
			}
		}
		// AND every configured recipient is subscribed to it, and no one else
		if len(env.Alerts) == 0 {
			t.Errorf("%s: no one receives the alerts", name)
		}
		subs := resources(t, st, "AWS::SNS::Subscription")
		got := map[string]bool{}
		for _, s := range subs {
			if js(s["TopicArn"]) != topicArn {
				t.Errorf("%s subscription %v is not on the alerts topic %s", name, s, topicArn)
			}
			got[s["Protocol"].(string)+" "+s["Endpoint"].(string)] = true
		}
		for _, a := range env.Alerts {
			if !got[string(a.Kind)+" "+a.Endpoint] {
				t.Errorf("%s: %s %s is not subscribed (have %v)", name, a.Kind, a.Endpoint, got)
			}
		}
		if len(subs) != len(env.Alerts) {
			t.Errorf("%s: %d subscriptions, %d configured", name, len(subs), len(env.Alerts))
		}
	}
}

// alertStack synthesizes the alerts topic alone for env.
func alertStack(env Environment) awscdk.Stack {
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Alerts"), &awscdk.StackProps{Env: &awscdk.Environment{Region: jsii.String(DefaultRegion)}})
	NewAlertTopic(stack, "Alerts", AlertTopicProps{Env: env})
	return stack
}

func TestEverySubscriptionKindReachesItsRecipient(t *testing.T) {
	// GIVEN an environment with an email, an HTTPS endpoint and a Slack channel
	env := baseEnvironment("qa")
	env.Alerts = []AlertSubscription{
		{Kind: AlertEmail, Endpoint: "oncall@example.com"},
		{Kind: AlertHTTPS, Endpoint: "https://events.pager.example.com/sns"},
		{Kind: AlertSlack, SlackWorkspaceID: "T0123ABCD", SlackChannelID: "C0456EFGH"},
	}
	// WHEN its alerts topic is synthesized
	tpl := assertions.Template_FromStack(alertStack(env), nil)
	// THEN the topic is per environment, and each recipient is subscribed
	tpl.HasResourceProperties(jsii.String("AWS::SNS::Topic"), map[string]any{"TopicName": "huntaze-cost-alerts-qa"})
	topic := assertions.Match_ObjectLike(&map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("AlertsTopic"))})
	tpl.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), map[string]any{"Protocol": "email", "Endpoint": "oncall@example.com", "TopicArn": topic})
	tpl.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), map[string]any{"Protocol": "https", "Endpoint": "https://events.pager.example.com/sns", "TopicArn": topic})
	// AND the Slack channel through an AWS Chatbot configuration listing the
	// topic, whose role can only read CloudWatch
	tpl.HasResourceProperties(jsii.String("AWS::Chatbot::SlackChannelConfiguration"), map[string]any{
		"SlackWorkspaceId": "T0123ABCD", "SlackChannelId": "C0456EFGH", "SnsTopicArns": []any{topic},
		"GuardrailPolicies": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
			"Fn::Join": assertions.Match_ArrayWith(&[]any{assertions.Match_ArrayWith(&[]any{":iam::aws:policy/CloudWatchReadOnlyAccess"})}),
		})}),
	})
}

func TestAnInvalidSubscriptionFailsSynthesisNamingTheField(t *testing.T) {
	for _, c := range []struct {
		sub  AlertSubscription
		want string
	}{
		{AlertSubscription{Kind: AlertEmail, Endpoint: "oncall"}, `Endpoint "oncall" is not an email address`},
		{AlertSubscription{Kind: AlertHTTPS, Endpoint: "http://pager.example.com"}, `is not an https:// URL`},
		{AlertSubscription{Kind: AlertSlack, SlackWorkspaceID: "T0123ABCD", SlackChannelID: "#alerts"}, `SlackChannelID "#alerts" is not a Slack channel id`},
		{AlertSubscription{Kind: "sms", Endpoint: "+33600000000"}, `Kind "sms" is not one of email, https, slack`},
	} {
		// GIVEN an environment with one bad subscription
		env := baseEnvironment("qa")
		env.Alerts = []AlertSubscription{c.sub}
		// WHEN synthesized THEN an error annotation names the field and why
		assertions.Annotations_FromStack(alertStack(env)).HasError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String(".*"+regexpQuote(c.want)+".*")))
	}
}

func regexpQuote(s string) string {
	r := strings.NewReplacer(".", `\.`, "/", `\/`, "(", `\(`, ")", `\)`, "+", `\+`, "?", `\?`, "*", `\*`, "[", `\[`, "]", `\]`, "|", `\|`)
	return r.Replace(s)
}
