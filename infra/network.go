package infra

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// VPCCIDR is the address range of a created VPC.
const VPCCIDR = "10.40.0.0/16"

// NetworkProps configures the network.
type NetworkProps struct {
	Env Environment
}

// Network is the VPC the limiter, the cache and the scraper run in.
type Network struct {
	constructs.Construct
	Vpc awsec2.IVpc
	// Interface and Gateway are the VPC endpoints by service; each gets its
	// policy from RestrictEndpoints once the resources exist.
	Interface map[string]awsec2.InterfaceVpcEndpoint
	Gateway   map[string]awsec2.GatewayVpcEndpoint
}

// NewNetwork creates (or imports) the VPC with private subnets, interface
// endpoints for SQS, Secrets Manager, ECR, ECR API and CloudWatch Logs,
// gateway endpoints for S3 and DynamoDB, and flow logs (seed 003 R8.4).
func NewNetwork(scope constructs.Construct, id string, props NetworkProps) *Network {
	c := constructs.NewConstruct(scope, jsii.String(id))
	var vpc awsec2.IVpc
	if props.Env.VPCID != "" {
		vpc = awsec2.Vpc_FromLookup(c, jsii.String("Vpc"), &awsec2.VpcLookupOptions{VpcId: jsii.String(props.Env.VPCID)})
	} else {
		created := awsec2.NewVpc(c, jsii.String("Vpc"), &awsec2.VpcProps{
			IpAddresses:       awsec2.IpAddresses_Cidr(jsii.String(VPCCIDR)),
			AvailabilityZones: jsii.Strings(props.Env.AvailabilityZones...),
			NatGateways:       jsii.Number(float64(props.Env.NATGateways)),
			SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
				{Name: jsii.String("public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(24)},
				{Name: jsii.String("private"), SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS, CidrMask: jsii.Number(22)},
			},
		})
		logs := awslogs.NewLogGroup(c, jsii.String("FlowLogs"), &awslogs.LogGroupProps{
			Retention:     retention(props.Env),
			RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
		})
		created.AddFlowLog(jsii.String("FlowLog"), &awsec2.FlowLogOptions{
			Destination: awsec2.FlowLogDestination_ToCloudWatchLogs(logs, nil),
			TrafficType: awsec2.FlowLogTrafficType_ALL,
		})
		vpc = created
	}
	private := &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS}
	cidr := jsii.String(VPCCIDR)
	if props.Env.VPCID != "" {
		cidr = vpc.VpcCidrBlock() // concrete after the lookup
	}
	endpointSG := awsec2.NewSecurityGroup(c, jsii.String("EndpointSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc: vpc, Description: jsii.String("Interface endpoints: HTTPS from inside the VPC only"), AllowAllOutbound: jsii.Bool(false),
	})
	endpointSG.AddIngressRule(awsec2.Peer_Ipv4(cidr), awsec2.Port_Tcp(jsii.Number(443)), jsii.String("HTTPS from the VPC"), nil)
	n := &Network{Construct: c, Interface: map[string]awsec2.InterfaceVpcEndpoint{}, Gateway: map[string]awsec2.GatewayVpcEndpoint{}}
	for name, svc := range map[string]awsec2.InterfaceVpcEndpointAwsService{
		"Sqs":            awsec2.InterfaceVpcEndpointAwsService_SQS(),
		"SecretsManager": awsec2.InterfaceVpcEndpointAwsService_SECRETS_MANAGER(),
		"Ecr":            awsec2.InterfaceVpcEndpointAwsService_ECR_DOCKER(),
		"EcrApi":         awsec2.InterfaceVpcEndpointAwsService_ECR(),
		"Logs":           awsec2.InterfaceVpcEndpointAwsService_CLOUDWATCH_LOGS(),
	} {
		n.Interface[name] = vpc.AddInterfaceEndpoint(jsii.String(name+"Endpoint"), &awsec2.InterfaceVpcEndpointOptions{
			Service: svc, Subnets: private, PrivateDnsEnabled: jsii.Bool(true),
			Open: jsii.Bool(false), SecurityGroups: &[]awsec2.ISecurityGroup{endpointSG},
		})
	}
	n.Gateway["S3"] = vpc.AddGatewayEndpoint(jsii.String("S3Endpoint"), &awsec2.GatewayVpcEndpointOptions{Service: awsec2.GatewayVpcEndpointAwsService_S3()})
	n.Gateway["DynamoDb"] = vpc.AddGatewayEndpoint(jsii.String("DynamoDbEndpoint"), &awsec2.GatewayVpcEndpointOptions{Service: awsec2.GatewayVpcEndpointAwsService_DYNAMODB()})
	n.Vpc = vpc
	return n
}

// EndpointResources are this system's resources reachable through the VPC
// endpoints (ARNs).
type EndpointResources struct {
	Queues     []*string // SQS
	Secrets    []*string // Secrets Manager (ARNs or ARN patterns)
	Repository *string   // the ECR repository the scraper image is pulled from
	LogGroups  []*string // CloudWatch Logs groups written from the VPC
	Objects    []*string // S3 object ARNs (bucket/*)
	Tables     []*string // DynamoDB tables
}

// RestrictEndpoints gives every endpoint a policy: only principals of this
// account (aws:PrincipalAccount), only the actions the system uses, only
// on r. Without a policy an endpoint lets anything in the VPC reach any
// account's queues, secrets or buckets (a path out for stolen data).
// Two documented exceptions need Resource "*" (the actions take no ARN:
// ecr:GetAuthorizationToken, secretsmanager:GetRandomPassword), and ECR's
// image layers come from its own S3 bucket through presigned URLs signed by
// ECR, not by this account: that one statement names the bucket and has no
// principal condition.
func (n *Network) RestrictEndpoints(r EndpointResources) {
	stack := awscdk.Stack_Of(n.Construct)
	ours := func(actions []string, resources ...*string) awsiam.PolicyStatement {
		return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
			Actions:    jsii.Strings(actions...), Resources: &resources,
			Conditions: &map[string]any{"StringEquals": map[string]any{"aws:PrincipalAccount": stack.Account()}},
		})
	}
	n.Interface["Sqs"].AddToPolicy(ours([]string{"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}, r.Queues...))
	sm := n.Interface["SecretsManager"]
	sm.AddToPolicy(ours([]string{"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"}, r.Secrets...))
	sm.AddToPolicy(ours([]string{"secretsmanager:GetRandomPassword"}, jsii.String("*")))
	for _, name := range []string{"Ecr", "EcrApi"} {
		ep := n.Interface[name]
		ep.AddToPolicy(ours([]string{"ecr:GetAuthorizationToken"}, jsii.String("*")))
		ep.AddToPolicy(ours([]string{"ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"}, r.Repository))
	}
	n.Interface["Logs"].AddToPolicy(ours([]string{"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}, r.LogGroups...))
	s3 := n.Gateway["S3"]
	s3.AddToPolicy(ours([]string{"s3:PutObject", "s3:GetObject"}, r.Objects...))
	s3.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()}, Actions: jsii.Strings("s3:GetObject"),
		Resources: jsii.Strings("arn:" + *stack.Partition() + ":s3:::prod-" + *stack.Region() + "-starport-layer-bucket/*"),
	}))
	n.Gateway["DynamoDb"].AddToPolicy(ours([]string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:Scan"}, r.Tables...))
}

// retention maps the environment's log retention to the CDK enum.
func retention(env Environment) awslogs.RetentionDays {
	switch {
	case env.LogRetentionDays >= 90:
		return awslogs.RetentionDays_THREE_MONTHS
	case env.LogRetentionDays >= 30:
		return awslogs.RetentionDays_ONE_MONTH
	default:
		return awslogs.RetentionDays_ONE_WEEK
	}
}
