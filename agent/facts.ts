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
  vpcId: string;
  subnetId: string;
  vpcCidr: string;
  hostname?: string;
  /** The instance's own tags, when IMDS exposes them (InstanceMetadataTags=enabled); else undefined. */
  tags?: Record<string, string>;
}
