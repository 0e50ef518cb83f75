// Mustache rendering with the interface's variables; HTML escaping is off (these are config files, not pages).
import Mustache from "mustache";
import type { InstanceFacts } from "../instance/facts";
import { publicDnsName } from "../instance/facts";

export interface PeerView {
  id: string;
  ip: string;
  name: string;
  az: string;
  tags: Record<string, string>;
}

export interface TemplateView {
  instance: {
    id: string;
    region: string;
    az: string;
    private_ipv4: string;
    public_ipv4: string;
    elastic_ip: string;
    /** EC2's public DNS name of public_ipv4 (the Elastic IP's, once claimed); empty without a public address. */
    public_dns: string;
    mac: string;
    vpc_id: string;
    subnet_id: string;
    hostname: string;
  };
  tags: Record<string, string>;
  peers: Record<string, PeerView[]>;
  staged?: string;
}

/** The Elastic IP this run claimed (the elastic_ip action's output), as templates see it. */
export interface ClaimedAddress {
  publicIp?: string;
}

/**
 * The variables templates see. `eip`, when given, is the address the elastic_ip action claimed in this run: it becomes
 * elastic_ip and public_ipv4, as it will be once associated. An action whose templates use it depends on elastic_ip
 * (see mentionsElasticIp).
 */
export function templateView(
  instance: InstanceFacts,
  peers: Record<string, PeerView[]> = {},
  eip?: ClaimedAddress,
): TemplateView {
  const elasticIp = eip?.publicIp ?? instance.elasticIp;
  const publicIp = elasticIp ?? instance.publicIpv4;
  return {
    instance: {
      id: instance.id,
      region: instance.region,
      az: instance.az,
      private_ipv4: instance.privateIpv4,
      public_ipv4: publicIp ?? "",
      elastic_ip: elasticIp ?? "",
      public_dns: publicIp ? publicDnsName(publicIp, instance.region) : "",
      mac: instance.mac,
      vpc_id: instance.vpcId,
      subnet_id: instance.subnetId,
      hostname: instance.hostname ?? "",
    },
    tags: instance.tags ?? {},
    peers,
  };
}

/** Whether a template uses a variable the elastic_ip action changes: its action must then wait for elastic_ip. */
export function mentionsElasticIp(template: string): boolean {
  return /\b(elastic_ip|public_ipv4|public_dns)\b/.test(template);
}

/**
 * Renders with escaping off; `escape` applies to {{x}} values only (not to the template's own text), where a value
 * lands somewhere that is not plain text: a shell command, a regex replacement, an API filter.
 */
export function render(template: string, view: TemplateView, escape: (value: unknown) => string = String): string {
  return Mustache.render(template, view, {}, { escape });
}
