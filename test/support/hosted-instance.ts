// An instance with a hostname (ip-10-0-0-5.ec2.internal), for the tests of what templates may put in files: the
// reserved-name rules depend on it.
import type { InstanceFacts } from "../../agent/instance/facts";

export const hostedInstance: InstanceFacts = {
  id: "i-0aaaaaaaaaaaaaaa0",
  region: "us-east-1",
  az: "us-east-1a",
  privateIpv4: "10.0.0.5",
  mac: "0e:00:00:00:00:01",
  vpcId: "vpc-1",
  subnetId: "subnet-1",
  vpcCidr: "10.0.0.0/16",
  hostname: "ip-10-0-0-5.ec2.internal",
};
