// Which hosted zone each record goes in: forward zones by name or id, the private reverse zones of the VPC; each
// resolved once and remembered in state, so a later boot of the same instance asks Route 53 nothing to find them.
import type { RecordConfig } from "../config/schema";
import { AwsCallError, ConfigError } from "../core/errors";
import { canonicalDnsName, isInZone } from "../core/names";
import { reverseName, zoneIdOf } from "./dns-records";
import type { ActionContext } from "./types";

export interface ZoneRef {
  id: string;
  name: string;
  private: boolean;
}

/** What state.json keeps between boots. */
export interface ZoneCache {
  /** Forward zones by the key a record names them with (see zoneKey). */
  zones?: Record<string, ZoneRef>;
  /** The private reverse zones (in-addr.arpa, ip6.arpa) associated with the VPC, as ListHostedZonesByVPC listed them. */
  reverse?: { vpcId: string; zones: ZoneRef[] };
}

export function zoneKey(r: Pick<RecordConfig, "zone" | "zone_id" | "private">): string {
  return r.zone_id !== undefined
    ? `id:${zoneIdOf(r.zone_id)}`
    : `name:${canonicalDnsName(r.zone ?? "")}${r.private === undefined ? "" : r.private ? "|private" : "|public"}`;
}

/** A zone that Route 53 no longer has (deleted and perhaps made again under a new id). */
export function isZoneGone(error: unknown): boolean {
  return error instanceof AwsCallError && error.code === "NoSuchHostedZone";
}

/** The zones of one plan: looked up at most once each, from the cache when it has them. */
export class Zones {
  private readonly forwardZones = new Map<string, Promise<ZoneRef>>();
  private reverseZones: Promise<ZoneRef[]> | undefined;
  /** Whether a zone came from the cache (a zone gone since is then looked up again). */
  usedCache = false;

  constructor(
    private readonly ctx: ActionContext,
    private readonly cache: ZoneCache,
  ) {}

  forward(r: RecordConfig, at: string): Promise<ZoneRef> {
    const key = zoneKey(r);
    let zone = this.forwardZones.get(key);
    if (!zone) {
      const cached = this.cache.zones?.[key];
      if (cached) this.usedCache = true;
      zone = cached ? Promise.resolve(cached) : findZone(this.ctx, r, at);
      this.forwardZones.set(key, zone);
    }
    return zone;
  }

  /** The longest private reverse zone associated with the VPC that holds the address's PTR name, if any. */
  async reverse(ip: string): Promise<ZoneRef | undefined> {
    const vpcId = this.ctx.instance.vpcId;
    const cached = this.cache.reverse?.vpcId === vpcId ? this.cache.reverse.zones : undefined;
    if (cached) this.usedCache = true;
    this.reverseZones ??= cached ? Promise.resolve(cached) : reverseZonesOf(this.ctx);
    const name = reverseName(ip);
    const matching = (await this.reverseZones).filter((z) => isInZone(name, z.name));
    return matching.sort((a, b) => b.name.length - a.name.length)[0];
  }

  /** What to remember for the next boot: every zone this plan used. */
  async snapshot(): Promise<ZoneCache> {
    const entries = await Promise.all(
      [...this.forwardZones].map(async ([key, zone]) => [key, await zone.catch(() => undefined)] as const),
    );
    const zones = Object.fromEntries(entries.filter((e): e is [string, ZoneRef] => e[1] !== undefined));
    const reverse = await this.reverseZones?.catch(() => undefined);
    return {
      ...(Object.keys(zones).length > 0 && { zones }),
      ...(reverse && { reverse: { vpcId: this.ctx.instance.vpcId, zones: reverse } }),
    };
  }
}

async function findZone(ctx: ActionContext, r: RecordConfig, at: string): Promise<ZoneRef> {
  if (r.zone_id !== undefined) {
    const id = zoneIdOf(r.zone_id);
    const out = await ctx.aws.call("route53", id, (sdk) => new sdk.GetHostedZoneCommand({ Id: id }), {
      notFound: {
        codes: ["NoSuchHostedZone"],
        error: () => new ConfigError(`no hosted zone with id ${id}`, undefined, `${at}.zone_id`),
      },
    });
    return {
      id,
      name: canonicalDnsName(out.HostedZone?.Name ?? ""),
      private: out.HostedZone?.Config?.PrivateZone ?? false,
    };
  }
  const wanted = canonicalDnsName(r.zone ?? "");
  const out = await ctx.aws.call(
    "route53",
    wanted,
    (sdk) => new sdk.ListHostedZonesByNameCommand({ DNSName: wanted, MaxItems: 100 }),
  );
  // The listing starts at the name and runs on past it: keep exact matches only.
  let candidates: ZoneRef[] = (out.HostedZones ?? [])
    .filter((z) => canonicalDnsName(z.Name ?? "") === wanted)
    .map((z) => ({ id: zoneIdOf(z.Id ?? ""), name: wanted, private: z.Config?.PrivateZone ?? false }));
  if (r.private !== undefined) candidates = candidates.filter((z) => z.private === r.private);
  const kind = r.private === undefined ? "" : r.private ? "private " : "public ";
  if (candidates.length === 0) {
    throw new ConfigError(`no ${kind}hosted zone named ${wanted} in this account`, undefined, `${at}.zone`);
  }
  const privates = candidates.filter((z) => z.private);
  if (privates.length > 1 || (candidates.length > 1 && r.private === undefined)) {
    // Several zones share the name: a private one must be associated with this instance's VPC to be chosen.
    const associated: ZoneRef[] = [];
    for (const zone of privates) {
      const detail = await ctx.aws.call("route53", zone.id, (sdk) => new sdk.GetHostedZoneCommand({ Id: zone.id }));
      if ((detail.VPCs ?? []).some((v) => v.VPCId === ctx.instance.vpcId)) associated.push(zone);
    }
    if (r.private === true && associated.length === 1) return associated[0]!;
    const list = candidates.map((z) => `${z.id} (${z.private ? "private" : "public"})`).join(", ");
    throw new ConfigError(
      `${candidates.length} hosted zones are named ${wanted}: ${list}; set private: true or false, or zone_id`,
      undefined,
      `${at}.zone`,
    );
  }
  return candidates[0]!;
}

/** Every private reverse zone associated with the instance's VPC (one call, paged only past 100 zones). */
async function reverseZonesOf(ctx: ActionContext): Promise<ZoneRef[]> {
  const zones: ZoneRef[] = [];
  let token: string | undefined;
  do {
    const out = await ctx.aws.call(
      "route53",
      ctx.instance.vpcId,
      (sdk) =>
        new sdk.ListHostedZonesByVPCCommand({
          VPCId: ctx.instance.vpcId,
          VPCRegion: ctx.instance.region as never,
          MaxItems: 100,
          ...(token !== undefined && { NextToken: token }),
        }),
    );
    for (const z of out.HostedZoneSummaries ?? []) {
      const name = canonicalDnsName(z.Name ?? "");
      if (name.endsWith(".in-addr.arpa.") || name.endsWith(".ip6.arpa.") || /^(in-addr|ip6)\.arpa\.$/.test(name)) {
        zones.push({ id: zoneIdOf(z.HostedZoneId ?? ""), name, private: true });
      }
    }
    token = out.NextToken || undefined;
  } while (token !== undefined);
  return zones;
}
