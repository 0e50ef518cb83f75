// The Route 53 client and the commands bootlace sends (see ec2.ts).
export {
  Route53Client,
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  GetHostedZoneCommand,
  ListHostedZonesByNameCommand,
  ListHostedZonesByVPCCommand,
  ListResourceRecordSetsCommand,
} from "@aws-sdk/client-route-53";
