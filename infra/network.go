package infra

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
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
	for name, svc := range map[string]awsec2.InterfaceVpcEndpointAwsService{
		"Sqs":            awsec2.InterfaceVpcEndpointAwsService_SQS(),
		"SecretsManager": awsec2.InterfaceVpcEndpointAwsService_SECRETS_MANAGER(),
		"Ecr":            awsec2.InterfaceVpcEndpointAwsService_ECR_DOCKER(),
		"EcrApi":         awsec2.InterfaceVpcEndpointAwsService_ECR(),
		"Logs":           awsec2.InterfaceVpcEndpointAwsService_CLOUDWATCH_LOGS(),
	} {
		vpc.AddInterfaceEndpoint(jsii.String(name+"Endpoint"), &awsec2.InterfaceVpcEndpointOptions{
			Service: svc, Subnets: private, PrivateDnsEnabled: jsii.Bool(true),
			Open: jsii.Bool(false), SecurityGroups: &[]awsec2.ISecurityGroup{endpointSG},
		})
	}
	vpc.AddGatewayEndpoint(jsii.String("S3Endpoint"), &awsec2.GatewayVpcEndpointOptions{Service: awsec2.GatewayVpcEndpointAwsService_S3()})
	vpc.AddGatewayEndpoint(jsii.String("DynamoDbEndpoint"), &awsec2.GatewayVpcEndpointOptions{Service: awsec2.GatewayVpcEndpointAwsService_DYNAMODB()})
	return &Network{Construct: c, Vpc: vpc}
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
