// Mustache rendering with the interface's variables; HTML escaping is off (these are config files, not pages).
import Mustache from "mustache";
import type { InstanceFacts } from "./facts";

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
    mac: string;
    vpc_id: string;
    subnet_id: string;
    hostname: string;
  };
  tags: Record<string, string>;
  peers: Record<string, PeerView[]>;
  staged?: string;
}

export function templateView(instance: InstanceFacts, peers: Record<string, PeerView[]> = {}): TemplateView {
  return {
    instance: {
      id: instance.id,
      region: instance.region,
      az: instance.az,
      private_ipv4: instance.privateIpv4,
      public_ipv4: instance.publicIpv4 ?? "",
      elastic_ip: instance.elasticIp ?? "",
      mac: instance.mac,
      vpc_id: instance.vpcId,
      subnet_id: instance.subnetId,
      hostname: instance.hostname ?? "",
    },
    tags: instance.tags ?? {},
    peers,
  };
}

const noEscape = { escape: (value: unknown): string => String(value) };

export function render(template: string, view: TemplateView): string {
  return Mustache.render(template, view, {}, noEscape);
}
