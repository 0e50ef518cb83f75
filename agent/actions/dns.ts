// Route 53 records: finds each zone, upserts only what differs, marks what it owns, waits for INSYNC; at shutdown
// deletes the records marked delete_on_shutdown if they still hold this instance's value.
import type { Change as R53Change, ResourceRecordSet } from "@aws-sdk/client-route-53";
import type { RecordConfig } from "../config/schema";
import { allOrConfigErrors, AwsCallError, ConfigError } from "../core/errors";
import { poll } from "../core/retry";
import { mentionsTags, renderRequired, templateView } from "../template/render";
import { canonicalDnsName, isDnsName, isInZone, isIPv4, isIPv6 } from "../core/names";
import { dnsPermissions } from "./dns-permissions";
import type { Current, Decision, Desired } from "./dns-records";
import {
  changesFor,
  decide,
  decodeRoute53Name,
  describeChange,
  ownerRecordName,
  parseOwnership,
  valuesOf,
  zoneIdOf,
} from "./dns-records";
import type { Action, ActionContext, Change, ElasticIpOutput, Outcome, Plan } from "./types";

// ---- reading the world ----------------------------------------------------------------------------------------

interface Zone {
  id: string;
  name: string;
  private: boolean;
}

async function findZone(ctx: ActionContext, r: RecordConfig, at: string): Promise<Zone> {
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
  let candidates: Zone[] = (out.HostedZones ?? [])
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
    const associated: Zone[] = [];
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

async function readRrset(
  ctx: ActionContext,
  zoneId: string,
  name: string,
  type: string,
): Promise<ResourceRecordSet | undefined> {
  const out = await ctx.aws.call(
    "route53",
    `${zoneId} (${name} ${type})`,
    (sdk) =>
      new sdk.ListResourceRecordSetsCommand({
        HostedZoneId: zoneId,
        StartRecordName: name,
        StartRecordType: type as "A",
        MaxItems: 1,
      }),
  );
  // StartRecordName is a position, not a filter: the first rrset may be a later name.
  const first = out.ResourceRecordSets?.[0];
  return first && decodeRoute53Name(first.Name ?? "") === name && first.Type === type ? first : undefined;
}

async function readCurrent(ctx: ActionContext, d: Desired): Promise<Current> {
  const [rrset, ownerRrset] = await Promise.all([
    readRrset(ctx, d.zoneId, d.name, d.type),
    readRrset(ctx, d.zoneId, ownerRecordName(d.name, d.type), "TXT"),
  ]);
  return { ...(rrset && { rrset }), ...(ownerRrset && { ownerRrset }) };
}

function resolveValue(ctx: ActionContext, r: RecordConfig, at: string): string | undefined {
  const eip = ctx.upstream.elastic_ip as ElasticIpOutput | undefined;
  switch (r.value) {
    case "private_ipv4":
      return ctx.instance.privateIpv4;
    case "public_ipv4": {
      const ip = eip?.publicIp ?? ctx.instance.publicIpv4;
      // With an elastic_ip section the address comes from there, even when that action could not plan.
      if (ip === undefined && !ctx.config.elastic_ip) {
        throw new ConfigError("this instance has no public IPv4 address", undefined, `${at}.value`);
      }
      return ip;
    }
    case "elastic_ip":
      if (!ctx.config.elastic_ip) {
        throw new ConfigError("value elastic_ip needs an elastic_ip section to claim one", undefined, `${at}.value`);
      }
      return eip?.publicIp;
    default:
      return r.value;
  }
}

// ---- the action -------------------------------------------------------------------------------------------------

interface RecordPlan {
  desired: Desired;
  current: Current;
  decision: Decision;
}

export interface DnsPlanData {
  records: RecordPlan[];
}

/** Saved for stop: every record this instance manages. */
export interface DnsSaved {
  owner: string;
  records: {
    zoneId: string;
    name: string;
    type: "A" | "AAAA";
    value: string;
    ttl: number;
    deleteOnShutdown: boolean;
  }[];
}

async function desiredRecords(ctx: ActionContext): Promise<Desired[]> {
  const records = ctx.config.dns?.records ?? [];
  const tags = records.some((r) => mentionsTags(r.name)) ? await ctx.tags() : {};
  const view = templateView(ctx.instance, tags);
  const zones = new Map<string, Promise<Zone>>();
  const desired = await allOrConfigErrors(
    records.map(async (r, i): Promise<Desired> => {
      const at = `dns.records.${i}`;
      const name = canonicalDnsName(renderRequired(r.name, view, `${at}.name`));
      if (!isDnsName(name))
        throw new ConfigError(`renders to ${JSON.stringify(name)}, not a DNS name`, undefined, `${at}.name`);
      const key = `${r.zone_id ?? r.zone}|${String(r.private)}`;
      if (!zones.has(key)) zones.set(key, findZone(ctx, r, at));
      const zone = await zones.get(key)!;
      if (!isInZone(name, zone.name)) {
        throw new ConfigError(`${name} is not inside the zone ${zone.name}`, undefined, `${at}.name`);
      }
      const value = resolveValue(ctx, r, at);
      if (value !== undefined && !(r.type === "A" ? isIPv4(value) : isIPv6(value))) {
        throw new ConfigError(
          `${JSON.stringify(value)} is not an ${r.type === "A" ? "IPv4" : "IPv6"} address`,
          undefined,
          `${at}.value`,
        );
      }
      return {
        zoneId: zone.id,
        zoneName: zone.name,
        name,
        type: r.type,
        ttl: r.ttl,
        value,
        deleteOnShutdown: r.delete_on_shutdown,
        takeover: r.takeover,
      };
    }),
  );
  const seen = new Set<string>();
  return desired.filter((d) => {
    const key = `${d.zoneId} ${d.name} ${d.type}`;
    if (seen.has(key)) throw new ConfigError(`${d.name} ${d.type} is configured twice`, undefined, "dns.records");
    seen.add(key);
    return true;
  });
}

async function planRecords(ctx: ActionContext, desired: Desired[]): Promise<RecordPlan[]> {
  const owner = ctx.config.dns?.owner_id ?? "bootlace";
  return Promise.all(
    desired.map(async (d) => {
      const current = await readCurrent(ctx, d);
      return { desired: d, current, decision: decide(d, current, owner) };
    }),
  );
}

function isChangeBatchConflict(error: unknown): boolean {
  return error instanceof AwsCallError && error.code === "InvalidChangeBatch";
}

/** Sends one zone's batch; if someone changed a record between our read and our write, reads again once. */
async function applyZone(
  ctx: ActionContext,
  plans: RecordPlan[],
  retried = false,
): Promise<{ changeId?: string; plans: RecordPlan[] }> {
  const owner = ctx.config.dns?.owner_id ?? "bootlace";
  const changes = plans.flatMap((p) => changesFor(p.desired, p.decision, p.current, owner, ctx.instance.id));
  if (changes.length === 0) return { plans };
  const zoneId = plans[0]!.desired.zoneId;
  const names = plans.map((p) => `${p.desired.name} ${p.desired.type}`).join(", ");
  try {
    const out = await ctx.aws.call(
      "route53",
      `${zoneId} (${names})`,
      (sdk) =>
        new sdk.ChangeResourceRecordSetsCommand({
          HostedZoneId: zoneId,
          ChangeBatch: { Comment: `bootlace ${ctx.instance.id}`, Changes: changes },
        }),
    );
    const changeId = out.ChangeInfo?.Id;
    return changeId ? { changeId, plans } : { plans };
  } catch (error) {
    if (retried || !isChangeBatchConflict(error)) throw error;
    ctx.log.warn(`zone ${zoneId} changed while planning; reading it again`, { error: (error as Error).message });
    return applyZone(
      ctx,
      await planRecords(
        ctx,
        plans.map((p) => p.desired),
      ),
      true,
    );
  }
}

async function waitInsync(ctx: ActionContext, changeId: string): Promise<void> {
  const started = ctx.clock.now();
  const result = await poll(
    async (attempt) => {
      const out = await ctx.aws.call("route53", changeId, (sdk) => new sdk.GetChangeCommand({ Id: changeId }));
      if (out.ChangeInfo?.Status === "INSYNC") return true;
      if (attempt === 0) ctx.log.info(`waiting for Route 53 change ${changeId} to be INSYNC`);
      return undefined;
    },
    // Route 53 usually syncs within seconds to a minute: poll soon, then back off; not the SDK waiter's 30 s floor.
    {
      label: `GetChange ${changeId}`,
      clock: ctx.clock,
      deadline: ctx.deadline,
      initialMs: 1000,
      factor: 1.5,
      maxMs: 10000,
    },
  );
  if (!result.done) {
    throw new Error(
      `Route 53 change ${changeId} still PENDING after ${((ctx.clock.now() - started) / 1000).toFixed(0)} s (deadline)`,
    );
  }
  ctx.log.debug(`change ${changeId} INSYNC`, { ms: ctx.clock.now() - started });
}

export const dnsAction: Action<DnsPlanData> = {
  name: "dns",

  enabled: (config) => (config.dns?.records.length ?? 0) > 0,

  dependsOn: (config) =>
    config.elastic_ip && config.dns?.records.some((r) => r.value === "elastic_ip" || r.value === "public_ipv4")
      ? ["elastic_ip"]
      : [],

  async plan(ctx): Promise<Plan<DnsPlanData>> {
    const records = await planRecords(ctx, await desiredRecords(ctx));
    for (const r of records) if (r.decision.op === "refuse") ctx.log.warn(r.decision.reason);
    const changes = records.flatMap((r) => describeChange(r.desired, r.decision) ?? []);
    return { changes, data: { records } };
  },

  async apply(ctx, plan): Promise<Outcome> {
    const byZone = new Map<string, RecordPlan[]>();
    for (const r of plan.data.records) {
      if (r.desired.value === undefined) throw new Error(`${r.desired.name}: no address to publish`);
      byZone.set(r.desired.zoneId, [...(byZone.get(r.desired.zoneId) ?? []), r]);
    }
    const sent = await Promise.all([...byZone.values()].map((plans) => applyZone(ctx, plans)));
    for (const r of sent.flatMap((s) => s.plans)) {
      if (r.decision.op === "update" && r.decision.takeoverFrom) {
        ctx.log.warn(`took over ${r.desired.name} ${r.desired.type} from ${r.decision.takeoverFrom}`);
      }
    }
    if (ctx.config.dns?.wait !== "none") {
      await Promise.all(sent.flatMap((s) => (s.changeId ? [waitInsync(ctx, s.changeId)] : [])));
    }
    const final = sent.flatMap((s) => s.plans);
    const managed = final.filter((r) => r.decision.op !== "refuse");
    const saved: DnsSaved = {
      owner: ctx.config.dns?.owner_id ?? "bootlace",
      records: managed.map(({ desired: d }) => ({
        zoneId: d.zoneId,
        name: d.name,
        type: d.type,
        value: d.value!,
        ttl: d.ttl,
        deleteOnShutdown: d.deleteOnShutdown,
      })),
    };
    const failures = final.flatMap((r) => (r.decision.op === "refuse" ? [r.decision.reason] : []));
    return {
      changes: final.flatMap((r) => describeChange(r.desired, r.decision) ?? []),
      state: saved,
      output: { records: managed.map((r) => r.desired.name) },
      ...(failures.length > 0 && { failures }),
    };
  },

  permissions: dnsPermissions,

  async stop(ctx, saved): Promise<Outcome> {
    const state = saved as DnsSaved;
    const changes: Change[] = [];
    const kept: DnsSaved["records"] = [];
    await Promise.all(
      state.records.map(async (r) => {
        if (!r.deleteOnShutdown) {
          kept.push(r);
          return;
        }
        const d: Desired = { ...r, zoneName: "", value: r.value, takeover: false };
        const current = await readCurrent(ctx, d);
        const values = valuesOf(current.rrset);
        if (!current.rrset) {
          ctx.log.info(`${r.name} ${r.type} is already gone`);
          return;
        }
        if (values.length !== 1 || values[0] !== r.value) {
          // Another instance took the name over (failover): its record is not ours to delete.
          ctx.log.info(`left ${r.name} ${r.type}: it now holds ${values.join(",")}, not this instance's ${r.value}`);
          return;
        }
        const ownership = parseOwnership(current.ownerRrset);
        const batch: R53Change[] = [{ Action: "DELETE", ResourceRecordSet: current.rrset }];
        if (ownership?.owner === state.owner && current.ownerRrset) {
          batch.push({ Action: "DELETE", ResourceRecordSet: current.ownerRrset });
        }
        await ctx.aws.call(
          "route53",
          `${r.zoneId} (${r.name} ${r.type})`,
          (sdk) =>
            new sdk.ChangeResourceRecordSetsCommand({
              HostedZoneId: r.zoneId,
              ChangeBatch: { Comment: `bootlace stop ${ctx.instance.id}`, Changes: batch },
            }),
        );
        changes.push({ kind: "delete", target: `${r.name} ${r.type}`, detail: r.value });
      }),
    );
    return { changes, state: { ...state, records: kept } };
  },
};
