// What bootlace knows about the instance it runs on, read from IMDS once per run.

export interface InstanceFacts {
  id: string;
  region: string;
  az: string;
  accountId?: string;
  /** Primary private IPv4 of the primary interface. */
  privateIpv4: string;
  /** Public IPv4 (the Elastic IP when one is associated); absent when the instance has none. */
  publicIpv4?: string;
  /** The Elastic IP this run associated, once the elastic_ip action has claimed one. */
  elasticIp?: string;
  mac: string;
  /** The primary interface's id (eni-...), when IMDS gives it: what an Elastic IP is associated with. */
  interfaceId?: string;
  /** Every private IPv4 of the primary interface (the primary first), when IMDS lists them. */
  privateIpv4s?: string[];
  /** The primary interface's IPv6 addresses (IMDS ipv6s), when it has any: `value: ipv6` publishes the first. */
  ipv6s?: string[];
  vpcId: string;
  subnetId: string;
  vpcCidr: string;
  hostname?: string;
}

/**
 * The public DNS name EC2 gives a public IPv4 address (resolved to the private address from inside the VPC when the
 * VPC has DNS hostnames enabled): ec2-a-b-c-d.compute-1.amazonaws.com in us-east-1, ec2-a-b-c-d.REGION.compute.amazonaws.com
 * elsewhere.
 */
export function publicDnsName(ip: string, region: string): string {
  const host = `ec2-${ip.replace(/\./g, "-")}`;
  return region === "us-east-1" ? `${host}.compute-1.amazonaws.com` : `${host}.${region}.compute.amazonaws.com`;
}
