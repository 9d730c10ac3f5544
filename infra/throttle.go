package infra

import (
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/jsii-runtime-go"

	api "github.com/huntaze/message-pipeline/functions/api/handler"
)

// APIShare sizes the HTTP API's throttling so that callers honouring their
// 429s share it fairly: the handler admits at most CallerRequests per
// CallerWindow from one caller (token subject; CALLER_REQUESTS,
// CALLER_WINDOW, a fixed window kept in DynamoDB), and the stage admits
// Callers such callers at their limit at once. HTTP APIs have no
// per-client throttle at the gateway, so the per-caller limit lives in the
// handler and the stage is sized for Callers of them. It does not stop a
// caller that ignores its 429s: the gateway charges the route's shared
// bucket before the authorizer and the handler know the caller (the known
// gap and its remedy, CloudFront + WAF: docs/api.md, "Fair share").
type APIShare struct {
	CallerRequests int
	CallerWindow   time.Duration
	// Callers is how many callers at their limit the stage carries at once.
	Callers int
	// StatusRate, ReplayRate (requests per second, burst twice that) are
	// the operators' routes' own buckets: polling status or replaying cannot
	// eat the send route's.
	StatusRate, ReplayRate int
}

// CallerRate is one caller's sustained requests per second.
func (a APIShare) CallerRate() float64 {
	return float64(a.CallerRequests) / a.CallerWindow.Seconds()
}

// SendRate is the send route's sustained limit: Callers at their rate.
func (a APIShare) SendRate() float64 { return float64(a.Callers) * a.CallerRate() }

// SendBurst is the send route's burst: a fixed window lets one caller put
// 2 × CallerRequests through around a window boundary, every caller at once.
func (a APIShare) SendBurst() float64 { return 2 * float64(a.Callers*a.CallerRequests) }

// throttle applies the share to the stage: the default route settings are
// the send route's, status and replay get their own.
func throttle(stage awsapigatewayv2.CfnStage, share APIShare, routes []awsapigatewayv2.HttpRoute) {
	stage.SetDefaultRouteSettings(&awsapigatewayv2.CfnStage_RouteSettingsProperty{
		ThrottlingRateLimit: jsii.Number(share.SendRate()), ThrottlingBurstLimit: jsii.Number(share.SendBurst()),
	})
	stage.SetRouteSettings(map[string]any{
		"GET " + api.PathStatus:  map[string]any{"ThrottlingRateLimit": share.StatusRate, "ThrottlingBurstLimit": 2 * share.StatusRate},
		"POST " + api.PathReplay: map[string]any{"ThrottlingRateLimit": share.ReplayRate, "ThrottlingBurstLimit": 2 * share.ReplayRate},
		"POST " + api.PathSend:   map[string]any{"ThrottlingRateLimit": share.SendRate(), "ThrottlingBurstLimit": share.SendBurst()},
	})
	// Route settings name routes by key: the routes must exist first.
	for _, r := range routes {
		stage.Node().AddDependency(r)
	}
}
