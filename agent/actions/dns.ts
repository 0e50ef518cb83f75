// Route 53 records: finds each zone (once, then from state), reads each name set in one listing, sends each zone's
// changes in one batch (records, ownership records, PTRs), waits for INSYNC; reaps what dead owners left under its
// names; at shutdown deletes the records marked delete_on_shutdown if they still hold this instance's value.
import type { Change as R53Change, ResourceRecordSet } from "@aws-sdk/client-route-53";
import type { RecordConfig } from "../config/schema";
import { SET_IDENTIFIER, SET_IDENTIFIER_FORM } from "../config/schema";
import { allOrConfigErrors, AwsCallError, ConfigError } from "../core/errors";
import { mentionsTags, renderRequired, templateView } from "../template/render";
import { canonicalDnsName, isDnsName, isInZone, isIPv4, isIPv6 } from "../core/names";
import { dnsPermissions } from "./dns-permissions";
import { readNameSets, ZoneRead } from "./dns-read";
import type { NameSets } from "./dns-read";
import { rrsetKey } from "./dns-read";
import { notRunning, REAP_PER_RUN, reapCandidates } from "./dns-reap";
import type { ReapCandidate } from "./dns-reap";
import type { Current, Decision, Desired, RecordType, Removal, Routing } from "./dns-records";
import {
  changesFor,
  decide,
  deletesFor,
  describeChange,
  labelOf,
  normalValue,
  ownerRecordName,
  parseOwnership,
  reverseName,
  sameValues,
  valuesOf,
} from "./dns-records";
import { isZoneGone, Zones } from "./dns-zones";
import type { ZoneCache } from "./dns-zones";
import type { Action, ActionContext, Change, ElasticIpOutput, Outcome, Plan } from "./types";

// ---- what the configuration asks for ---------------------------------------------------------------------------

/** A forward record as configured and rendered, with where it came from and whether its PTR is kept. */
interface ForwardRecord extends Desired {
  at: string;
  reverse: boolean;
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
    case "ipv6": {
      const ip = ctx.instance.ipv6s?.[0];
      if (ip === undefined) {
        throw new ConfigError(
          `instance ${ctx.instance.id} has no IPv6 address (IMDS lists none on its primary interface ${ctx.instance.mac}): give its subnet an IPv6 CIDR block and the instance an address, or use a literal value`,
          undefined,
          `${at}.value`,
        );
      }
      return ip;
    }
    default:
      return r.value;
  }
}

function routingOf(r: RecordConfig, setIdentifier: string): Routing {
  return {
    setIdentifier,
    ...(r.multivalue === true && { multivalue: true as const }),
    ...(r.weight !== undefined && { weight: r.weight }),
    ...(r.failover !== undefined && { failover: r.failover }),
    ...(r.health_check_id !== undefined && { healthCheckId: r.health_check_id }),
  };
}

async function forwardRecords(ctx: ActionContext, zones: Zones): Promise<ForwardRecord[]> {
  const dns = ctx.config.dns;
  const records = dns?.records ?? [];
  const tags = records.some((r) => mentionsTags(r.name) || mentionsTags(r.set_identifier ?? ""))
    ? await ctx.tags()
    : {};
  const view = templateView(ctx.instance, tags);
  const desired = await allOrConfigErrors(
    records.map(async (r, i): Promise<ForwardRecord> => {
      const at = `dns.records.${i}`;
      const name = canonicalDnsName(renderRequired(r.name, view, `${at}.name`));
      // A value from a tag or IMDS never makes a wildcard record: only a `*.` written in the configuration does
      // (a DNS name may hold `*` only as its whole first label).
      if (name.startsWith("*.") && !r.name.startsWith("*.")) {
        throw new ConfigError(
          `renders to ${JSON.stringify(name)}: a template value would make a wildcard name`,
          undefined,
          `${at}.name`,
        );
      }
      if (!isDnsName(name))
        throw new ConfigError(`renders to ${JSON.stringify(name)}, not a DNS name`, undefined, `${at}.name`);
      let routing: Routing | undefined;
      if (r.set_identifier !== undefined) {
        // A value from a tag or IMDS lands in a record name (the ownership record's): it must be one plain label.
        const id = renderRequired(r.set_identifier, view, `${at}.set_identifier`);
        if (!SET_IDENTIFIER.test(id)) {
          throw new ConfigError(
            `renders to ${JSON.stringify(id)}; expected ${SET_IDENTIFIER_FORM}`,
            undefined,
            `${at}.set_identifier`,
          );
        }
        routing = routingOf(r, id);
      }
      const zone = await zones.forward(r, at);
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
        values: value === undefined ? undefined : [value],
        ...(routing && { routing }),
        deleteOnShutdown: r.delete_on_shutdown,
        takeover: r.takeover,
        at,
        reverse: r.reverse ?? dns?.reverse ?? false,
      };
    }),
  );
  const seen = new Set<string>();
  for (const d of desired) {
    const key = `${d.zoneId} ${rrsetKey(d.name, d.type, d.routing?.setIdentifier)}`;
    const label = labelOf(d.name, d.type, d.routing?.setIdentifier);
    if (seen.has(key)) throw new ConfigError(`${label} is configured twice`, undefined, "dns.records");
    seen.add(key);
  }
  return desired;
}

/** One PTR record set per address: the names of this instance's records that hold it. */
async function ptrRecords(forward: ForwardRecord[], zones: Zones, ctx: ActionContext): Promise<Desired[]> {
  const byIp = new Map<string, { names: Set<string>; ttl: number; keep: boolean; at: string }>();
  for (const f of forward) {
    if (!f.reverse) continue;
    for (const ip of f.values ?? []) {
      const entry = byIp.get(ip) ?? { names: new Set<string>(), ttl: f.ttl, keep: false, at: f.at };
      entry.names.add(f.name);
      entry.ttl = Math.min(entry.ttl, f.ttl);
      entry.keep ||= !f.deleteOnShutdown;
      byIp.set(ip, entry);
    }
  }
  return allOrConfigErrors(
    [...byIp].map(async ([ip, e]): Promise<Desired> => {
      const zone = await zones.reverse(ip);
      if (!zone) {
        const kind = isIPv4(ip) ? "in-addr.arpa" : "ip6.arpa";
        throw new ConfigError(
          `no private reverse zone (${kind}) associated with ${ctx.instance.vpcId} holds ${reverseName(ip)}, the PTR name of ${ip}: create one and associate it with the VPC, or set reverse: false`,
          undefined,
          ctx.config.dns?.reverse ? "dns.reverse" : `${e.at}.reverse`,
        );
      }
      return {
        zoneId: zone.id,
        zoneName: zone.name,
        name: reverseName(ip),
        type: "PTR",
        ttl: e.ttl,
        values: [...e.names].sort(),
        deleteOnShutdown: !e.keep,
        takeover: false,
      };
    }),
  );
}

// ---- the plan ---------------------------------------------------------------------------------------------------

interface RecordPlan {
  desired: Desired;
  current: Current;
  decision: Decision;
}

/** A record set this instance no longer wants (the PTR of an address it had), deleted exactly as read. */
interface Stale {
  zoneId: string;
  name: string;
}

interface RemovalPlan {
  label: string;
  removal: Removal;
  detail: string;
}

interface ZonePlan {
  zoneId: string;
  records: RecordPlan[];
  /** This instance's own record sets it no longer wants. */
  removals: RemovalPlan[];
  stale: Stale[];
  reaps: RemovalPlan[];
}

export interface DnsPlanData {
  zones: ZonePlan[];
  cache: ZoneCache;
}

/** Saved for stop, and for the next boot: every record this instance manages, and the zones it found. */
export interface DnsSaved {
  owner: string;
  records: {
    zoneId: string;
    name: string;
    type: "A" | "AAAA";
    value: string;
    ttl: number;
    deleteOnShutdown: boolean;
    setIdentifier?: string;
  }[];
  /** PTR records: their names, and the names that stay at shutdown (the others' records are deleted then). */
  ptrs?: { zoneId: string; name: string; values: string[]; keep: string[] }[];
  cache?: ZoneCache;
}

function currentFor(read: ZoneRead, d: Desired): Current {
  const setId = d.routing?.setIdentifier;
  const siblings = read.all(d.name, d.type).filter((r) => r.SetIdentifier !== setId);
  const siblingOwners = new Map<string, ResourceRecordSet>();
  for (const s of siblings) {
    const owner = read.get(ownerRecordName(d.name, d.type, s.SetIdentifier), "TXT");
    if (owner) siblingOwners.set(s.SetIdentifier ?? "", owner);
  }
  const rrset = read.get(d.name, d.type, setId);
  const ownerRrset = read.get(ownerRecordName(d.name, d.type, setId), "TXT");
  const cname = read.get(d.name, "CNAME");
  return {
    ...(rrset && { rrset }),
    ...(ownerRrset && { ownerRrset }),
    siblings,
    siblingOwners,
    ...(cname && { cname }),
  };
}

/** A record set and its ownership record, if that ownership names this instance (owner and instance both). */
function ownRemoval(read: ZoneRead, name: string, type: RecordType, owner: string, self: string): Removal | undefined {
  const rrset = read.get(name, type);
  const ownerRrset = read.get(ownerRecordName(name, type), "TXT");
  const ownership = parseOwnership(ownerRrset);
  if (!ownerRrset || ownership?.owner !== owner || ownership.instance !== self) return undefined;
  return { ...(rrset && { rrset }), ownerRrset };
}

function nameSetsOf(records: Desired[], stale: Stale[]): NameSets {
  const sets: NameSets = new Map();
  const add = (name: string, type: RecordType) => sets.set(name, (sets.get(name) ?? new Set()).add(type));
  for (const d of records) add(d.name, d.type);
  for (const s of stale) add(s.name, "PTR");
  return sets;
}

/** Reads one zone's name sets and decides every record in it. */
async function planZone(
  ctx: ActionContext,
  zoneId: string,
  records: Desired[],
  stale: Stale[],
): Promise<{ plan: ZonePlan; read: ZoneRead }> {
  const owner = ctx.config.dns?.owner_id ?? "bootlace";
  const read = await readNameSets(ctx, zoneId, nameSetsOf(records, stale));
  const plans = records.map((desired) => {
    const current = currentFor(read, desired);
    return { desired, current, decision: decide(desired, current, owner) };
  });
  const removals: RemovalPlan[] = [];
  for (const s of stale) {
    const removal = ownRemoval(read, s.name, "PTR", owner, ctx.instance.id);
    if (removal) {
      removals.push({
        label: labelOf(s.name, "PTR"),
        removal,
        detail: `${valuesOf(removal.rrset).join(",") || "(its ownership record)"}: no longer this instance's address`,
      });
    } else if (read.get(s.name, "PTR")) {
      ctx.log.info(`left ${labelOf(s.name, "PTR")}: it is no longer this instance's`);
    }
  }
  return { plan: { zoneId, records: plans, removals, stale, reaps: [] }, read };
}

async function planAll(ctx: ActionContext, cache: ZoneCache): Promise<DnsPlanData> {
  const zones = new Zones(ctx, cache);
  try {
    const forward = await forwardRecords(ctx, zones);
    const ptrs = await ptrRecords(forward, zones, ctx);
    const desired: Desired[] = [...forward.map(({ at: _at, reverse: _r, ...d }) => d), ...ptrs];
    const ptrKeys = new Set(ptrs.map((p) => `${p.zoneId} ${p.name}`));
    const previous = ctx.previous as DnsSaved | undefined;
    // While an address is not known yet (a pool's Elastic IP in a plan), no earlier PTR can be called stale.
    const unknown = forward.some((f) => f.reverse && f.values === undefined);
    const stale = unknown ? [] : (previous?.ptrs ?? []).filter((p) => !ptrKeys.has(`${p.zoneId} ${p.name}`));
    const zoneIds = [...new Set([...desired.map((d) => d.zoneId), ...stale.map((s) => s.zoneId)])];
    const planned = await Promise.all(
      zoneIds.map((zoneId) => {
        const records = desired.filter((d) => d.zoneId === zoneId);
        const staleHere = stale.filter((s) => s.zoneId === zoneId).map(({ zoneId: z, name }) => ({ zoneId: z, name }));
        const plan = planZone(ctx, zoneId, records, staleHere);
        // A zone that only held an old PTR and is gone since took that PTR with it.
        return records.length > 0 ? plan : plan.catch((error: unknown) => emptyZone(zoneId, error));
      }),
    );
    if (ctx.config.dns?.reap) await planReaps(ctx, planned);
    return { zones: planned.map((p) => p.plan), cache: await zones.snapshot() };
  } catch (error) {
    // A zone remembered from an earlier boot that Route 53 no longer has: look every zone up again.
    if (zones.usedCache && isZoneGone(error)) {
      ctx.log.info("a hosted zone remembered from an earlier run is gone; looking the zones up again");
      return planAll(ctx, {});
    }
    throw error;
  }
}

function emptyZone(zoneId: string, error: unknown): { plan: ZonePlan; read: ZoneRead } {
  if (!isZoneGone(error)) throw error;
  return {
    plan: { zoneId, records: [], removals: [], stale: [], reaps: [] },
    read: new ZoneRead(zoneId, new Map(), new Set()),
  };
}

async function planReaps(ctx: ActionContext, planned: { plan: ZonePlan; read: ZoneRead }[]): Promise<void> {
  const owner = ctx.config.dns?.owner_id ?? "bootlace";
  const candidates: ReapCandidate[] = planned.flatMap(({ plan, read }) => {
    const mine = new Set(
      plan.records.map((r) => rrsetKey(r.desired.name, r.desired.type, r.desired.routing?.setIdentifier)),
    );
    for (const s of plan.stale) mine.add(rrsetKey(s.name, "PTR"));
    return reapCandidates(read, owner, ctx.instance.id, mine);
  });
  if (candidates.length === 0) return;
  const gone = await notRunning(
    ctx,
    candidates.map((c) => c.instance),
  );
  const dead = candidates.filter((c) => gone.has(c.instance));
  if (dead.length > REAP_PER_RUN) {
    ctx.log.warn(`${dead.length} record sets of instances that no longer run; reaping ${REAP_PER_RUN} this run`);
  }
  for (const c of dead.slice(0, REAP_PER_RUN)) {
    const plan = planned.find((p) => p.plan.zoneId === c.zoneId)!.plan;
    plan.reaps.push({
      label: c.label,
      removal: c.removal,
      detail: `${c.values.join(",") || "(its ownership record)"} (owner ${c.instance} is ${gone.get(c.instance)!})`,
    });
  }
}

function describePlan(plan: ZonePlan): Change[] {
  return [
    ...plan.records.flatMap((r) => describeChange(r.desired, r.decision) ?? []),
    ...plan.removals.map((r) => ({ kind: "delete", target: r.label, detail: r.detail })),
    ...plan.reaps.map((r) => ({ kind: "reap", target: r.label, detail: r.detail })),
  ];
}

// ---- applying ---------------------------------------------------------------------------------------------------

function isChangeBatchConflict(error: unknown): boolean {
  return error instanceof AwsCallError && error.code === "InvalidChangeBatch";
}

async function sendBatch(
  ctx: ActionContext,
  zoneId: string,
  what: string,
  comment: string,
  changes: R53Change[],
): Promise<string | undefined> {
  const out = await ctx.aws.call(
    "route53",
    `${zoneId} (${what})`,
    (sdk) =>
      new sdk.ChangeResourceRecordSetsCommand({
        HostedZoneId: zoneId,
        ChangeBatch: { Comment: `${comment} ${ctx.instance.id}`, Changes: changes },
      }),
  );
  return out.ChangeInfo?.Id;
}

function ownChanges(ctx: ActionContext, plan: ZonePlan): R53Change[] {
  const owner = ctx.config.dns?.owner_id ?? "bootlace";
  return [
    ...plan.records.flatMap((p) => changesFor(p.desired, p.decision, p.current, owner, ctx.instance.id)),
    ...plan.removals.flatMap((r) => deletesFor(r.removal)),
  ];
}

/**
 * Sends one zone's batch: every record of this instance in it, with their ownership records and PTRs. If someone
 * changed a record between our read and our write, Route 53 refuses the whole batch; then read again, once.
 */
async function applyZone(
  ctx: ActionContext,
  plan: ZonePlan,
  retried = false,
): Promise<{ plan: ZonePlan; change?: string }> {
  const changes = ownChanges(ctx, plan);
  if (changes.length === 0) return { plan };
  const names = [...new Set(plan.records.map((p) => p.desired.name))].join(", ");
  try {
    const change = await sendBatch(ctx, plan.zoneId, names, "bootlace", changes);
    return change ? { plan, change } : { plan };
  } catch (error) {
    if (retried || !isChangeBatchConflict(error)) throw error;
    ctx.log.warn(`zone ${plan.zoneId} changed while planning; reading it again`, { error: (error as Error).message });
    const again = await planZone(
      ctx,
      plan.zoneId,
      plan.records.map((p) => p.desired),
      plan.stale,
    );
    return applyZone(ctx, again.plan, true);
  }
}

/**
 * Reaps in their own batch, after this instance's own: a concurrent reaper or owner that changed a record set first
 * wins (Route 53 refuses the exact DELETE), which is no failure. A refused batch is tried again one record at a time.
 */
async function applyReaps(ctx: ActionContext, plan: ZonePlan): Promise<RemovalPlan[]> {
  const send = async (batch: RemovalPlan[]): Promise<RemovalPlan[] | undefined> => {
    const labels = batch.map((r) => r.label).join(", ");
    try {
      await sendBatch(
        ctx,
        plan.zoneId,
        labels,
        "bootlace reap for",
        batch.flatMap((r) => deletesFor(r.removal)),
      );
    } catch (error) {
      if (!isChangeBatchConflict(error)) throw error;
      ctx.log.info(`left ${labels}: changed since it was read (${describeError(error)})`);
      return undefined;
    }
    for (const r of batch) ctx.log.info(`reaped ${r.label}: ${r.detail}`);
    return batch;
  };
  if (plan.reaps.length === 0) return [];
  const all = await send(plan.reaps);
  if (all || plan.reaps.length === 1) return all ?? [];
  const done: RemovalPlan[] = [];
  for (const r of plan.reaps) done.push(...((await send([r])) ?? []));
  return done;
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Polls GetChange sparsely, with jitter so a fleet does not poll in step: about every second at first (a private
 * zone is usually INSYNC within seconds, and a boot waits on it), then growing to 15 s for a change that takes longer.
 */
async function waitInsync(ctx: ActionContext, changeId: string): Promise<void> {
  const started = ctx.clock.now();
  for (let attempt = 0; ; attempt++) {
    const ceiling = Math.min(15_000, 1_000 * Math.pow(1.3, attempt));
    const delay = Math.round(ceiling * (0.8 + 0.4 * Math.random()));
    const left = ctx.deadline.at - ctx.clock.now();
    if (left <= 0) {
      throw new Error(
        `Route 53 change ${changeId} still PENDING after ${((ctx.clock.now() - started) / 1000).toFixed(0)} s (deadline)`,
      );
    }
    await ctx.clock.sleep(Math.min(delay, left), ctx.deadline.signal);
    const out = await ctx.aws.call("route53", changeId, (sdk) => new sdk.GetChangeCommand({ Id: changeId }));
    if (out.ChangeInfo?.Status === "INSYNC") break;
    if (attempt === 0) ctx.log.info(`waiting for Route 53 change ${changeId} to be INSYNC`);
  }
  ctx.log.debug(`change ${changeId} INSYNC`, { ms: ctx.clock.now() - started });
}

function savedState(ctx: ActionContext, plans: ZonePlan[], cache: ZoneCache): DnsSaved {
  const managed = plans.flatMap((p) => p.records).filter((r) => r.decision.op !== "refuse");
  const forward = managed.filter((r) => r.desired.type !== "PTR").map((r) => r.desired);
  const ptrs = managed.filter((r) => r.desired.type === "PTR").map((r) => r.desired);
  return savedRecords(ctx.config.dns?.owner_id ?? "bootlace", forward, ptrs, cache);
}

/** What state.json keeps of the records this instance owns: what stop deletes, and the PTR names it keeps. */
function savedRecords(owner: string, forward: Desired[], ptrs: Desired[], cache: ZoneCache): DnsSaved {
  return {
    owner,
    records: forward.map((d) => ({
      zoneId: d.zoneId,
      name: d.name,
      type: d.type as "A" | "AAAA",
      value: d.values![0]!,
      ttl: d.ttl,
      deleteOnShutdown: d.deleteOnShutdown,
      ...(d.routing && { setIdentifier: d.routing.setIdentifier }),
    })),
    ...(ptrs.length > 0 && {
      ptrs: ptrs.map((d) => ({
        zoneId: d.zoneId,
        name: d.name,
        values: d.values!,
        // The names whose records outlive a shutdown (delete_on_shutdown: false) stay in the PTR at stop.
        keep: d.values!.filter((n) =>
          forward.some(
            (f) => f.name === n && !f.deleteOnShutdown && f.values?.some((ip) => reverseName(ip) === d.name),
          ),
        ),
      })),
    }),
    cache,
  };
}

// ---- the action -------------------------------------------------------------------------------------------------

/**
 * The zones an earlier plan of the same run found, by the run's door to AWS (one per run). A run plans dns again once
 * a pool's Elastic IP is claimed (runner.ts), and that plan takes the zones from here instead of looking them up a
 * second time, as a later boot takes them from state.json (a zone gone since is looked up afresh all the same).
 */
const zonesOfRun = new WeakMap<object, ZoneCache>();

function withZonesOfRun(saved: ZoneCache, run: ZoneCache | undefined): ZoneCache {
  if (!run) return saved;
  const reverse = run.reverse ?? saved.reverse;
  return { zones: { ...saved.zones, ...run.zones }, ...(reverse && { reverse }) };
}

export const dnsAction: Action<DnsPlanData> = {
  name: "dns",

  enabled: (config) => (config.dns?.records.length ?? 0) > 0,

  dependsOn: (config) =>
    config.elastic_ip && config.dns?.records.some((r) => r.value === "elastic_ip" || r.value === "public_ipv4")
      ? ["elastic_ip"]
      : [],

  async plan(ctx): Promise<Plan<DnsPlanData>> {
    const previous = ctx.previous as DnsSaved | undefined;
    const data = await planAll(ctx, withZonesOfRun(previous?.cache ?? {}, zonesOfRun.get(ctx.aws)));
    zonesOfRun.set(ctx.aws, data.cache);
    for (const r of data.zones.flatMap((z) => z.records))
      if (r.decision.op === "refuse") ctx.log.warn(r.decision.reason);
    return { changes: data.zones.flatMap(describePlan), data };
  },

  async apply(ctx, plan): Promise<Outcome> {
    for (const r of plan.data.zones.flatMap((z) => z.records)) {
      if (r.desired.values === undefined) throw new Error(`${r.desired.name}: no address to publish`);
    }
    const sent = await Promise.all(plan.data.zones.map((z) => applyZone(ctx, z)));
    const reaped = await Promise.all(sent.map((s) => applyReaps(ctx, s.plan)));
    const final = sent.map((s) => s.plan);
    for (const r of final.flatMap((z) => z.records)) {
      if (r.decision.op === "update" && r.decision.takeoverFrom) {
        const label = labelOf(r.desired.name, r.desired.type, r.desired.routing?.setIdentifier);
        ctx.log.warn(`took over ${label} from ${r.decision.takeoverFrom}`);
      }
    }
    if (ctx.config.dns?.wait !== "none") {
      // Polled even when the answer said INSYNC already (AWS always answers PENDING at submission; moto INSYNC).
      await Promise.all(sent.flatMap((s) => (s.change ? [waitInsync(ctx, s.change)] : [])));
    }
    const failures = final
      .flatMap((z) => z.records)
      .flatMap((r) => (r.decision.op === "refuse" ? [r.decision.reason] : []));
    const changes = [
      ...final.flatMap((z) => describePlan({ ...z, reaps: [] })),
      ...reaped.flat().map((r) => ({ kind: "reap", target: r.label, detail: r.detail })),
    ];
    const managed = final.flatMap((z) => z.records).filter((r) => r.decision.op !== "refuse");
    return {
      changes,
      state: savedState(ctx, final, plan.data.cache),
      output: { records: managed.filter((r) => r.desired.type !== "PTR").map((r) => r.desired.name) },
      ...(failures.length > 0 && { failures }),
    };
  },

  permissions: dnsPermissions,

  recover: recoverSaved,

  async stop(ctx, saved): Promise<Outcome> {
    const state = saved as DnsSaved;
    const deleting = state.records.filter((r) => r.deleteOnShutdown);
    const ptrs = (state.ptrs ?? []).filter((p) => !sameValues("PTR", p.values, p.keep));
    const zoneIds = [...new Set([...deleting.map((r) => r.zoneId), ...ptrs.map((p) => p.zoneId)])];
    const results = await Promise.all(
      zoneIds.map((zoneId) =>
        stopZone(
          ctx,
          state,
          zoneId,
          deleting.filter((r) => r.zoneId === zoneId),
          ptrs.filter((p) => p.zoneId === zoneId),
        ),
      ),
    );
    const ptrsLeft = (state.ptrs ?? []).filter((p) => p.keep.length > 0).map((p) => ({ ...p, values: p.keep }));
    return {
      changes: results.flat(),
      state: {
        ...state,
        records: state.records.filter((r) => !r.deleteOnShutdown),
        ...(state.ptrs && { ptrs: ptrsLeft }),
      },
    };
  },
};

// ---- stop without a usable state ----------------------------------------------------------------------------------

/**
 * What stop needs when state.json holds nothing usable of this action (missing, damaged and set aside, another
 * instance's): the records the configuration asks for, rendered as `run` renders them, kept only where Route 53's
 * ownership record beside them names this owner and this instance. stop then deletes those marked delete_on_shutdown
 * that still hold this instance's address, exactly as with a good state; a record whose ownership names anyone else
 * (or nobody) is never touched. The address of an elastic_ip or public_ipv4 record is the instance's public address
 * now (IMDS shows the Elastic IP associated with it); without one such a record cannot be known, and is said.
 */
async function recoverSaved(ctx: ActionContext): Promise<DnsSaved> {
  const owner = ctx.config.dns?.owner_id ?? "bootlace";
  const publicIp = ctx.instance.publicIpv4;
  const upstream = publicIp !== undefined ? { ...ctx.upstream, elastic_ip: { publicIp } } : ctx.upstream;
  const c: ActionContext = { ...ctx, upstream };
  const zones = new Zones(c, {});
  const forward = await forwardRecords(c, zones);
  for (const f of forward) {
    if (f.values === undefined && f.deleteOnShutdown) {
      ctx.log.warn(
        `stop: ${labelOf(f.name, f.type, f.routing?.setIdentifier)} is not known without state.json: its address is the Elastic IP, and this instance has no public address now; left as it is`,
      );
    }
  }
  const known = forward.filter((f) => f.values !== undefined);
  const ptrs = await ptrRecords(known, zones, c);
  const desired: Desired[] = [...known, ...ptrs];
  const zoneIds = [...new Set(desired.map((d) => d.zoneId))];
  const reads = await Promise.all(
    zoneIds.map(async (zoneId) => {
      try {
        return await readNameSets(
          c,
          zoneId,
          nameSetsOf(
            desired.filter((d) => d.zoneId === zoneId),
            [],
          ),
        );
      } catch (error) {
        if (!isZoneGone(error)) throw error;
        return new ZoneRead(zoneId, new Map(), new Set());
      }
    }),
  );
  const readOf = (zoneId: string): ZoneRead => reads[zoneIds.indexOf(zoneId)]!;
  const mine = (d: Desired): boolean => {
    const ownership = parseOwnership(
      readOf(d.zoneId).get(ownerRecordName(d.name, d.type, d.routing?.setIdentifier), "TXT"),
    );
    return ownership?.owner === owner && ownership.instance === ctx.instance.id;
  };
  const ownForward = known.filter(mine);
  const ownPtrs = ptrs.filter(mine);
  const left = known.length - ownForward.length;
  ctx.log.info(
    `no usable state of its records: recomputed from the configuration and Route 53's ownership records: ` +
      `${ownForward.length} this instance's${left > 0 ? `, ${left} not (left alone)` : ""}`,
  );
  return savedRecords(owner, ownForward, ownPtrs, await zones.snapshot());
}

type SavedRecord = DnsSaved["records"][number];
type SavedPtr = NonNullable<DnsSaved["ptrs"]>[number];

/** At shutdown, one zone: exact DELETEs of this instance's records (and PTRs) that still hold what it wrote. */
async function stopZone(
  ctx: ActionContext,
  state: DnsSaved,
  zoneId: string,
  records: SavedRecord[],
  ptrs: SavedPtr[],
  retried = false,
): Promise<Change[]> {
  const sets: NameSets = new Map();
  for (const r of records) sets.set(r.name, (sets.get(r.name) ?? new Set()).add(r.type));
  for (const p of ptrs) sets.set(p.name, (sets.get(p.name) ?? new Set()).add("PTR"));
  let read: ZoneRead;
  try {
    read = await readNameSets(ctx, zoneId, sets);
  } catch (error) {
    if (!isZoneGone(error)) throw error;
    ctx.log.info(`hosted zone ${zoneId} is gone, and its records with it`);
    return [];
  }
  const batch: R53Change[] = [];
  const changes: Change[] = [];
  for (const r of records) {
    const label = labelOf(r.name, r.type, r.setIdentifier);
    const rrset = read.get(r.name, r.type, r.setIdentifier);
    const values = valuesOf(rrset);
    if (!rrset) {
      ctx.log.info(`${label} is already gone`);
      continue;
    }
    if (values.length !== 1 || normalValue(r.type, values[0]!) !== normalValue(r.type, r.value)) {
      // Another instance took the name over (failover): its record is not ours to delete.
      ctx.log.info(`left ${label}: it now holds ${values.join(",")}, not this instance's ${r.value}`);
      continue;
    }
    const ownerRrset = read.get(ownerRecordName(r.name, r.type, r.setIdentifier), "TXT");
    const ours = parseOwnership(ownerRrset)?.owner === state.owner;
    batch.push(...deletesFor({ rrset, ...(ours && ownerRrset && { ownerRrset }) }));
    changes.push({ kind: "delete", target: label, detail: r.value });
  }
  for (const p of ptrs) {
    const label = labelOf(p.name, "PTR");
    const removal = ownRemoval(read, p.name, "PTR", state.owner, ctx.instance.id);
    if (!removal) {
      ctx.log.info(`left ${label}: it is gone or no longer this instance's`);
      continue;
    }
    if (p.keep.length === 0 || !removal.rrset) {
      batch.push(...deletesFor(removal));
      changes.push({ kind: "delete", target: label, detail: p.values.join(",") });
    } else {
      batch.push(
        { Action: "DELETE", ResourceRecordSet: removal.rrset },
        {
          Action: "CREATE",
          ResourceRecordSet: { ...removal.rrset, ResourceRecords: p.keep.map((Value) => ({ Value })) },
        },
      );
      changes.push({ kind: "update", target: label, detail: `${p.keep.join(",")} (was ${p.values.join(",")})` });
    }
  }
  if (batch.length === 0) return changes;
  try {
    await sendBatch(ctx, zoneId, [...sets.keys()].join(", "), "bootlace stop", batch);
    return changes;
  } catch (error) {
    if (retried || !isChangeBatchConflict(error)) throw error;
    ctx.log.warn(`zone ${zoneId} changed while stopping; reading it again`, { error: describeError(error) });
    return stopZone(ctx, state, zoneId, records, ptrs, true);
  }
}
