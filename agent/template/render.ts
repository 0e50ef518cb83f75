// Mustache rendering with the interface's variables; HTML escaping is off (these are config files, not pages).
import Mustache from "mustache";
import { ConfigError } from "../core/errors";
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
  tags: Record<string, string> = {},
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
    tags,
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

/** Whether a template may use the instance's tags: they must then be read (from the API when IMDS lacks them). */
export function mentionsTags(template: string): boolean {
  return /\btags\b/.test(template);
}

/** The variables ({{x}}, {{{x}}}, {{& x}}) a template uses outside sections, whose value in the view is empty. */
export function emptyVariables(template: string, view: TemplateView): string[] {
  const context = new Mustache.Context(view);
  const names = (Mustache.parse(template) as unknown[][])
    .filter((t) => t[0] === "name" || t[0] === "&")
    .map((t) => String(t[1]));
  return [...new Set(names)].filter((name) => {
    const value: unknown = context.lookup(name);
    return value === undefined || value === null || value === "";
  });
}

/**
 * Renders a value the configuration requires (a record name, a pool or peer filter tag): a template that uses an
 * empty variable — a tag this instance does not have, an address it lacks — is refused at keyPath, never rendered
 * into a shorter name or an empty filter.
 */
export function renderRequired(
  template: string,
  view: TemplateView,
  keyPath: string,
  escape?: (value: unknown) => string,
): string {
  const empty = emptyVariables(template, view);
  if (empty.length > 0) {
    const tags = empty.some((n) => n.startsWith("tags."))
      ? ` (this instance's tags: ${Object.keys(view.tags).join(", ") || "none"})`
      : "";
    throw new ConfigError(
      `${JSON.stringify(template)} uses ${empty.map((n) => `{{${n}}}`).join(", ")}, empty for this instance${tags}`,
      undefined,
      keyPath,
    );
  }
  return render(template, view, escape);
}
