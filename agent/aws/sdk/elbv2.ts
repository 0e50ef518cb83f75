// The ELBv2 client and the commands bootlace sends (see ec2.ts).
export {
  ElasticLoadBalancingV2Client,
  DeregisterTargetsCommand,
  DescribeTargetGroupAttributesCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  RegisterTargetsCommand,
} from "@aws-sdk/client-elastic-load-balancing-v2";
