// DNS as this instance's resolver answers it: each managed record resolving to this instance's address and back (PTR),
// each peer's name likewise, and the VPC's DNS attributes without which neither works.
import { Resolver } from "node:dns/promises";
import { peersAction } from "../actions/peers";
import type { PeersOutput } from "../actions/peers";
import type { ActionContext } from "../actions/types";
import type { Aws, Env } from "../aws/clients";
import type { RecordConfig } from "../config/schema";
import { ConfigError, describeCause } from "../core/errors";
import { isDnsName } from "../core/names";
import type { InstanceFacts } from "../instance/facts";
import { mentionsTags, renderRequired, templateView } from "../template/render";
import type { CheckResult, Status } from "./check";
import { fail, ok, warn } from "./check";
import { isDenied } from "./permissions";
import type { BaseContext } from "../wiring/runner";

/** The system's resolver, or the server BOOTLACE_RESOLVER names ("ADDRESS[:PORT]": to compare, and for tests). */
export function resolverFrom(env: Env): Resolver {
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  const server = env.BOOTLACE_RESOLVER;
  if (server) {
    try {
      resolver.setServers([server]);
    } catch (error) {
      throw new ConfigError(`${JSON.stringify(server)} is not ADDRESS[:PORT]: ${describeCause(error)}`, {
        source: "BOOTLACE_RESOLVER",
      });
    }
  }
  return resolver;
}

export async function vpcDns(aws: Aws, instance: InstanceFacts): Promise<CheckResult> {
  const vpc = instance.vpcId;
  const attribute = (Attribute: "enableDnsSupport" | "enableDnsHostnames") =>
    aws.call("ec2", vpc, (sdk) => new sdk.DescribeVpcAttributeCommand({ VpcId: vpc, Attribute }));
  let support: boolean | undefined;
  let hostnames: boolean | undefined;
  try {
    const [s, h] = await Promise.all([attribute("enableDnsSupport"), attribute("enableDnsHostnames")]);
    support = s.EnableDnsSupport?.Value;
    hostnames = h.EnableDnsHostnames?.Value;
  } catch (error) {
    if (!isDenied(error)) throw error;
    return warn(
      "vpc dns",
      `cannot read ${vpc}'s DNS attributes: ${describeCause(error)}`,
      "allow ec2:DescribeVpcAttribute to let doctor read them, or see DNS resolution and DNS hostnames in the VPC console",
    );
  }
  const modify = (flag: string): string => `aws ec2 modify-vpc-attribute --vpc-id ${vpc} ${flag}`;
  if (support === false) {
    return fail(
      "vpc dns",
      `enableDnsSupport is off in ${vpc}: the VPC's DNS server (169.254.169.253) does not answer, no name resolves`,
      modify("--enable-dns-support"),
    );
  }
  if (hostnames === false) {
    return warn(
      "vpc dns",
      `enableDnsHostnames is off in ${vpc}: private hosted zones do not resolve here, and instances get no DNS names`,
      modify("--enable-dns-hostnames"),
    );
  }
  return ok("vpc dns", `${vpc} has DNS support and DNS hostnames on`);
}

/** An answer's addresses or names, or the resolver's error code (ENOTFOUND is NXDOMAIN). */
async function ask(query: Promise<string[]>): Promise<string[] | string> {
  try {
    return await query;
  } catch (error) {
    return (error as { code?: string }).code ?? describeCause(error);
  }
}

const bare = (name: string): string => name.toLowerCase().replace(/\.$/, "");

/**
 * One name: it must resolve to `ip` (else `severity`), and `ip` back to it (else a warning: only software that checks
 * a connecting address's name needs that).
 */
async function forwardAndBack(
  resolver: Resolver,
  line: string,
  name: string,
  ip: string,
  severity: Exclude<Status, "ok">,
  fixes: { missing: string; elsewhere: string },
): Promise<CheckResult> {
  const bad = severity === "fail" ? fail : warn;
  const answers = await ask(ip.includes(":") ? resolver.resolve6(name) : resolver.resolve4(name));
  if (typeof answers === "string") return bad(line, `${name} does not resolve here (${answers})`, fixes.missing);
  if (!answers.includes(ip)) {
    return bad(line, `${name} resolves to ${answers.join(", ")} here, not ${ip}`, fixes.elsewhere);
  }
  const names = await ask(resolver.reverse(ip));
  if (typeof names !== "string" && names.map(bare).includes(bare(name))) {
    return ok(line, `${name} → ${ip} → ${name}`);
  }
  const back = typeof names === "string" ? `no name (${names})` : names.join(", ");
  return warn(
    line,
    `${name} resolves to ${ip}, but ${ip} resolves back to ${back}: software that checks a connecting address's ` +
      "name (pg_hba.conf host names, sshd UseDNS, grants by host) will not match it",
    `use addresses there, or keep a PTR record of ${ip} naming ${name} in a reverse zone associated with the VPC`,
  );
}

/** The address a record should hold, as this instance knows it now (IMDS: an associated Elastic IP is its public). */
function expected(r: RecordConfig, instance: InstanceFacts): string | undefined {
  if (r.value === "private_ipv4") return instance.privateIpv4;
  if (r.value === "public_ipv4" || r.value === "elastic_ip") return instance.publicIpv4;
  return r.value;
}

export async function records(ctx: BaseContext, resolver: Resolver): Promise<CheckResult[]> {
  const list = ctx.config.dns?.records ?? [];
  const tags = list.some((r) => mentionsTags(r.name)) ? await ctx.tags() : {};
  const view = templateView(ctx.instance, tags);
  return Promise.all(
    list.map(async (r, i): Promise<CheckResult> => {
      let name: string;
      try {
        name = bare(renderRequired(r.name, view, `dns.records.${i}.name`));
      } catch (error) {
        return fail(`dns.records.${i}`, describeCause(error), "fix the configuration (`bootlace validate`)");
      }
      const ip = expected(r, ctx.instance);
      if (ip === undefined) {
        return warn(`dns ${name}`, `this instance has no ${r.value} address yet`, "`bootlace run` claims it");
      }
      return forwardAndBack(resolver, `dns ${name}`, name, ip, "fail", {
        missing:
          "`bootlace run` creates it (`bootlace plan` says why it would not); a private zone must be associated with " +
          "this VPC",
        elsewhere:
          "`bootlace plan` shows what Route 53 holds: another instance's or a stale record (takeover: true takes it " +
          "over), or a resolver still caching the old answer (TTL), or another zone of that name answering here",
      });
    }),
  );
}

/** Each peer name that is a DNS name (a Name tag like "db-1" is not one to look up), found as `run` finds them. */
export async function peerNames(ctx: ActionContext, resolver: Resolver): Promise<CheckResult[]> {
  const { output } = await peersAction.plan(ctx);
  const sets = (output as PeersOutput).sets;
  const checks = Object.entries(sets).flatMap(([set, r]) =>
    r.peers
      .filter((p) => p.name.includes(".") && isDnsName(p.name))
      .map((p) =>
        forwardAndBack(resolver, `peer ${set} ${p.name}`, bare(p.name), p.ip, "warn", {
          missing: "a files entry using {{name}} of this peer will not resolve: use {{ip}}, or give the name a record",
          elsewhere: "a files entry using {{name}} of this peer reaches another address: use {{ip}}",
        }),
      ),
  );
  return Promise.all(checks);
}
