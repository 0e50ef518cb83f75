// The EC2 client and the commands bootlace sends, and nothing else: the bundle keeps only what is named here
// (scripts/build.mjs takes the SDK's ES modules, which esbuild can tree-shake; the package's index holds ~700).
export {
  EC2Client,
  AssociateAddressCommand,
  DescribeAddressesCommand,
  DescribeInstancesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeVpcAttributeCommand,
} from "@aws-sdk/client-ec2";
