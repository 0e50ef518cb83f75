// Elastic IP: associates a fixed address or a free one from a tagged pool with this instance, race-safely (never takes an
// address in use elsewhere unless allow_reassociation says so), and hands the address to the actions that publish it.
import { createHash } from "node:crypto";
import type { Address } from "@aws-sdk/client-ec2";
import { AwsCallError, ConfigError } from "../core/errors";
import { publicDnsName } from "../instance/facts";
import type { HandoffPlan } from "../lifecycle/handoff";
import { awaitHandoff, handoffPermissions, planHandoff } from "../lifecycle/handoff";
import { mentionsTags, renderRequired, templateView } from "../template/render";
import { escapeFilterWildcards } from "./peers";
import type { Action, ActionContext, Change, ElasticIpOutput, Outcome, Plan, PolicyStatement } from "./types";

// ---- pure parts -------------------------------------------------------------------------------------------------

/** Where the address goes: the primary interface (by id when IMDS gave it, else the instance) and a private IPv4. */
export interface Target {
  instanceId: string;
  interfaceId?: string;
  privateIp: string;
}

/** AWS omits the association fields of a free address; moto sends them empty. Both mean "not associated". */
const present = (value: string | undefined): value is string => value !== undefined && value !== "";

export function isAssociated(a: Address): boolean {
  return present(a.AssociationId) || present(a.InstanceId) || present(a.NetworkInterfaceId);
}

/** Associated with this instance's interface at all (on any of its private addresses). */
function onThisInstance(a: Address, t: Target): boolean {
  return (
    (present(a.InstanceId) && a.InstanceId === t.instanceId) ||
    (t.interfaceId !== undefined && a.NetworkInterfaceId === t.interfaceId)
  );
}

/** Associated exactly where it should be: this instance, the configured private address. */
export function isOurs(a: Address, t: Target): boolean {
  return onThisInstance(a, t) && (!present(a.PrivateIpAddress) || a.PrivateIpAddress === t.privateIp);
}

/** Who holds an address, in words for the log: "i-0abc (eni-0def, 10.0.0.4)". */
export function holderOf(a: Address): string {
  const where = [a.NetworkInterfaceId, a.PrivateIpAddress].filter(present).join(", ");
  if (present(a.InstanceId)) return where ? `${a.InstanceId} (${where})` : a.InstanceId;
  if (where) return where;
  return present(a.AssociationId) ? `association ${a.AssociationId}` : "nobody";
}

export function describeAddress(a: Address): string {
  return `${a.AllocationId ?? "?"} (${a.PublicIp ?? "?"})`;
}

export type Source =
  | { kind: "fixed"; allocationId: string }
  /** tags: the pool's tags rendered for this instance, with EC2 filter wildcards escaped. */
  | { kind: "pool"; label: string; tags: Record<string, string> };

export interface Candidate {
  address: Address;
  /** Sent as AllowReassociation: true only to take an address that is associated elsewhere on purpose. */
  reassociate: boolean;
}

export type EipDecision =
  { op: "none"; address: Address } | { op: "associate"; candidates: Candidate[] } | { op: "fail"; reason: string };

/**
 * The order in which this instance tries addresses: highest hash of (instance id, allocation id) first — rendezvous
 * hashing. Each instance has an order of its own, the same at every read: instances booting together start at
 * different addresses (two pick the same first one only by chance, one in the pool's size), and an address another
 * instance took only drops out of the list without reshuffling the rest, so a re-read after a refusal does not send
 * everyone to the same next address.
 */
export function preferenceOrder(addresses: readonly Address[], instanceId: string): Address[] {
  const weight = (a: Address): number =>
    createHash("sha256")
      .update(`${instanceId}/${a.AllocationId ?? ""}`)
      .digest()
      .readUInt32BE(0);
  return addresses
    .map((address) => ({ address, weight: weight(address) }))
    .sort((a, b) => b.weight - a.weight || (a.address.AllocationId ?? "").localeCompare(b.address.AllocationId ?? ""))
    .map((x) => x.address);
}

/**
 * What to do, from the addresses that match the configuration: nothing when one is already ours; otherwise the
 * candidates to try, each in this instance's own order (preferenceOrder) — free ones first, and addresses in use
 * elsewhere only with allow_reassociation (or when the address is on this very instance, at another private address).
 */
export function decideEip(
  source: Source,
  addresses: readonly Address[],
  target: Target,
  allowReassociation: boolean,
): EipDecision {
  const ours = addresses.find((a) => isOurs(a, target));
  if (ours) return { op: "none", address: ours };
  const free = preferenceOrder(
    addresses.filter((a) => !isAssociated(a)),
    target.instanceId,
  );
  const movable = preferenceOrder(
    addresses.filter((a) => isAssociated(a) && (allowReassociation || onThisInstance(a, target))),
    target.instanceId,
  );
  const candidates = [
    ...free.map((address) => ({ address, reassociate: false })),
    ...movable.map((address) => ({ address, reassociate: true })),
  ];
  if (candidates.length > 0) return { op: "associate", candidates };
  if (source.kind === "fixed") {
    const a = addresses[0];
    return {
      op: "fail",
      reason: a
        ? `${describeAddress(a)} is associated with ${holderOf(a)}; left alone — set elastic_ip.allow_reassociation: true to take it`
        : `no Elastic IP with allocation id ${source.allocationId}`,
    };
  }
  return {
    op: "fail",
    reason:
      addresses.length === 0
        ? `no Elastic IP carries the tags of pool ${source.label}`
        : `no free Elastic IP in pool ${source.label}: all ${addresses.length} are associated elsewhere (${addresses.map(holderOf).join("; ")}); nothing was taken`,
  };
}

function describeTarget(t: Target): string {
  return `${t.instanceId} ${t.privateIp}`;
}

export function describeClaim(c: Candidate, t: Target, region: string): Change {
  const a = c.address;
  const dns = a.PublicIp ? `; public DNS ${publicDnsName(a.PublicIp, region)}` : "";
  return c.reassociate
    ? { kind: "reassociate", target: describeAddress(a), detail: `from ${holderOf(a)} to ${describeTarget(t)}${dns}` }
    : { kind: "associate", target: describeAddress(a), detail: `with ${describeTarget(t)}${dns}` };
}

function outputOf(a: Address | undefined, region: string): ElasticIpOutput {
  if (!a?.PublicIp) return a?.AllocationId ? { allocationId: a.AllocationId } : {};
  return {
    ...(a.AllocationId && { allocationId: a.AllocationId }),
    publicIp: a.PublicIp,
    publicDns: publicDnsName(a.PublicIp, region),
  };
}

function summaryOf(a: Address, region: string): string {
  return `${a.PublicIp ?? "?"} (${a.PublicIp ? publicDnsName(a.PublicIp, region) : "no public DNS name"}), ${a.AllocationId ?? "?"}`;
}

// ---- reading and changing the world -----------------------------------------------------------------------------

async function sourceOf(ctx: ActionContext): Promise<Source> {
  const eip = ctx.config.elastic_ip!;
  if (eip.allocation_id !== undefined) return { kind: "fixed", allocationId: eip.allocation_id };
  const tags = await poolTags(ctx);
  return { kind: "pool", label: poolLabel(tags), tags };
}

/** The pool's tags with their templates ({{tags.Env}}) rendered for this instance; an empty render is refused. */
async function poolTags(ctx: ActionContext): Promise<Record<string, string>> {
  const pool = Object.entries(ctx.config.elastic_ip?.pool?.tags ?? {});
  const tags = pool.some(([, v]) => mentionsTags(v)) ? await ctx.tags() : {};
  const view = templateView(ctx.instance, tags);
  return Object.fromEntries(
    pool.map(([k, v]) => [k, renderRequired(v, view, `elastic_ip.pool.tags.${k}`, escapeFilterWildcards)]),
  );
}

function poolLabel(tags: Record<string, string>): string {
  return Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

function targetOf(ctx: ActionContext): Target {
  const configured = ctx.config.elastic_ip?.private_ip;
  const known = ctx.instance.privateIpv4s;
  if (configured !== undefined && known !== undefined && !known.includes(configured)) {
    throw new ConfigError(
      `${configured} is not a private IPv4 address of this instance's primary interface (${known.join(", ")})`,
      undefined,
      "elastic_ip.private_ip",
    );
  }
  return {
    instanceId: ctx.instance.id,
    ...(ctx.instance.interfaceId !== undefined && { interfaceId: ctx.instance.interfaceId }),
    privateIp: configured ?? ctx.instance.privateIpv4,
  };
}

async function describeAddresses(ctx: ActionContext, source: Source): Promise<Address[]> {
  if (source.kind === "fixed") {
    const out = await ctx.aws.call(
      "ec2",
      source.allocationId,
      (sdk) => new sdk.DescribeAddressesCommand({ AllocationIds: [source.allocationId] }),
      {
        notFound: {
          codes: ["InvalidAllocationID.NotFound"],
          error: () =>
            new ConfigError(
              `no Elastic IP with allocation id ${source.allocationId} in ${ctx.aws.region}`,
              undefined,
              "elastic_ip.allocation_id",
            ),
        },
      },
    );
    return out.Addresses ?? [];
  }
  const filters = Object.entries(source.tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }));
  const out = await ctx.aws.call(
    "ec2",
    `pool ${source.label}`,
    (sdk) => new sdk.DescribeAddressesCommand({ Filters: [...filters, { Name: "domain", Values: ["vpc"] }] }),
  );
  return out.Addresses ?? [];
}

async function associate(ctx: ActionContext, c: Candidate, t: Target): Promise<void> {
  const id = c.address.AllocationId!;
  await ctx.aws.call(
    "ec2",
    `${id} with ${describeTarget(t)}`,
    (sdk) =>
      new sdk.AssociateAddressCommand({
        AllocationId: id,
        ...(t.interfaceId !== undefined ? { NetworkInterfaceId: t.interfaceId } : { InstanceId: t.instanceId }),
        PrivateIpAddress: t.privateIp,
        // Always explicit: AWS's default is documented both ways (reference, section 2).
        AllowReassociation: c.reassociate,
      }),
  );
}

/**
 * Claims the first candidate; an AssociateAddress that goes through needs no read-back (without reassociation AWS
 * refuses an address held elsewhere). Only a refusal (Resource.AlreadyAssociated: another instance was first, or a
 * retry of ours found its first attempt done) costs a re-read of the pool, and the claim goes on with what is free
 * now, in this instance's order, and then with the candidates it was given that take an address on purpose (a
 * handoff's, from instances that are leaving: the pool's own decision does not know them as such).
 */
async function claim(
  ctx: ActionContext,
  data: EipPlanData,
  candidates: Candidate[],
): Promise<{ won: Candidate; now: Address }> {
  const { source, target: t } = data;
  const allow = ctx.config.elastic_ip?.allow_reassociation ?? false;
  const lost: string[] = [];
  const tried = new Set<string>();
  // Each refusal means another instance holds one more of the addresses: no more rounds than there are of them.
  for (let round = 0, next = candidates; ; round++) {
    const c = next[0]!;
    if (c.reassociate) ctx.log.warn(`taking ${describeAddress(c.address)} from ${holderOf(c.address)}`);
    try {
      await associate(ctx, c, t);
      return { won: c, now: c.address };
    } catch (error) {
      if (!(error instanceof AwsCallError) || error.code !== "Resource.AlreadyAssociated") throw error;
    }
    const addresses = await describeAddresses(ctx, source);
    const decision = decideEip(source, addresses, t, allow);
    if (decision.op === "none") return { won: c, now: decision.address };
    const refused = addresses.find((a) => a.AllocationId === c.address.AllocationId);
    const holder = refused && isAssociated(refused) ? holderOf(refused) : "nobody (released)";
    lost.push(`${c.address.AllocationId!} to ${holder}`);
    tried.add(c.address.AllocationId!);
    const fresh = decision.op === "associate" ? decision.candidates : [];
    const kept = candidates.filter(
      (k) =>
        k.reassociate &&
        !tried.has(k.address.AllocationId!) &&
        !fresh.some((f) => f.address.AllocationId === k.address.AllocationId),
    );
    next = [...fresh, ...kept];
    const more = next.length > 0 && round < candidates.length;
    ctx.log.info(`${describeAddress(c.address)} went to ${holder} first${more ? "; trying the next candidate" : ""}`);
    if (!more) {
      const what = source.kind === "pool" ? `any address of pool ${source.label}` : source.allocationId;
      throw new Error(
        `could not claim ${what}: another instance won each attempt (${lost.join("; ")}); nothing was taken`,
      );
    }
  }
}

// ---- the action -------------------------------------------------------------------------------------------------

export interface EipPlanData {
  source: Source;
  target: Target;
  decision: EipDecision;
  /** When the addresses behind the decision were read (clock ms). */
  readAt: number;
  /** Addresses held by leaving instances, waited for before the claim (elastic_ip.handoff). */
  handoff?: HandoffPlan;
}

/**
 * What to do with the addresses as read: decideEip, and when nothing can be claimed at once, the handoff of an
 * address held by an instance that is leaving (lifecycle/handoff.ts), if there is one.
 */
async function decide(
  ctx: ActionContext,
  source: Source,
  target: Target,
  addresses: readonly Address[],
): Promise<{ decision: EipDecision; handoff?: { plan: HandoffPlan; changes: Change[] } }> {
  const decided = decideEip(source, addresses, target, ctx.config.elastic_ip?.allow_reassociation ?? false);
  const handoff = decided.op === "fail" ? await planHandoff(ctx, addresses) : undefined;
  return handoff
    ? { decision: handoff.decision, handoff: { plan: handoff.plan, changes: handoff.changes } }
    : { decision: decided };
}

/**
 * A claim that starts longer than this after the pool was read reads it again first. A run applies only once every
 * action has planned, and in a fleet under throttling that takes minutes, in which other instances claim the pool's
 * addresses: a claim from the old list would try them and be refused, each refusal an AssociateAddress from the
 * tightest of EC2's buckets. A run that is not held up (plans take about a second) reads the pool once.
 */
export const STALE_READ_MS = 3000;

/**
 * The plan's decision, or a new one from the pool as it is now when the plan's read is stale (which may turn to a
 * handoff when the free addresses are gone by then). A planned handoff is kept: awaitHandoff reads its addresses.
 */
async function decisionNow(
  ctx: ActionContext,
  data: EipPlanData,
): Promise<{ decision: EipDecision; handoff?: HandoffPlan }> {
  const age = ctx.clock.now() - data.readAt;
  if (data.handoff) return { decision: data.decision, handoff: data.handoff };
  if (data.decision.op !== "associate" || age <= STALE_READ_MS) return { decision: data.decision };
  ctx.log.debug(`the pool was read ${(age / 1000).toFixed(0)} s ago; reading it again before claiming`);
  const addresses = await describeAddresses(ctx, data.source);
  const fresh = await decide(ctx, data.source, data.target, addresses);
  return { decision: fresh.decision, ...(fresh.handoff && { handoff: fresh.handoff.plan }) };
}

/** Saved in state.json: what this instance holds (stop leaves it: an Elastic IP outlives its instance on purpose). */
export interface EipSaved {
  allocationId: string;
  publicIp: string;
  publicDns: string;
}

function planChanges(ctx: ActionContext, data: EipPlanData): Change[] {
  const { decision, source, target } = data;
  if (decision.op !== "associate") return [];
  if (source.kind === "fixed") return [describeClaim(decision.candidates[0]!, target, ctx.aws.region)];
  const free = decision.candidates.filter((c) => !c.reassociate).length;
  return [
    free > 0
      ? {
          kind: "associate",
          target: `a free address of pool ${source.label}`,
          detail: `${free} free; with ${describeTarget(target)}`,
        }
      : {
          kind: "reassociate",
          target: `an address of pool ${source.label}`,
          detail: `none free: one in use, from ${holderOf(decision.candidates[0]!.address)} or another; to ${describeTarget(target)}`,
        },
  ];
}

export const elasticIpAction: Action<EipPlanData> = {
  name: "elastic_ip",

  enabled: (config) => config.elastic_ip !== undefined,

  dependsOn: () => [],

  async plan(ctx): Promise<Plan<EipPlanData>> {
    const source = await sourceOf(ctx);
    const target = targetOf(ctx);
    const addresses = await describeAddresses(ctx, source);
    const readAt = ctx.clock.now();
    const { decision, handoff } = await decide(ctx, source, target, addresses);
    if (decision.op === "fail") throw new Error(decision.reason);
    const data: EipPlanData = { source, target, decision, readAt, ...(handoff && { handoff: handoff.plan }) };
    // A pool address is only known once claimed: dependants plan with "the Elastic IP, once claimed".
    const known =
      decision.op === "none" ? decision.address : source.kind === "fixed" ? decision.candidates[0]?.address : undefined;
    return { changes: handoff?.changes ?? planChanges(ctx, data), data, output: outputOf(known, ctx.aws.region) };
  },

  async apply(ctx, plan): Promise<Outcome> {
    const { target } = plan.data;
    const { decision, handoff } = await decisionNow(ctx, plan.data);
    let changes: Change[] = [];
    let address: Address;
    if (decision.op === "none") {
      address = decision.address;
      ctx.log.info(`${describeAddress(address)} is already this instance's`);
    } else if (decision.op === "associate") {
      const candidates = handoff ? await awaitHandoff(ctx, handoff) : decision.candidates;
      const { won, now } = await claim(ctx, plan.data, candidates);
      address = now;
      changes = [describeClaim(won, target, ctx.aws.region)];
    } else {
      throw new Error(decision.reason);
    }
    const output = outputOf(address, ctx.aws.region);
    const saved: EipSaved = {
      allocationId: address.AllocationId ?? "",
      publicIp: output.publicIp ?? "",
      publicDns: output.publicDns ?? "",
    };
    return { changes, state: saved, output, summary: summaryOf(address, ctx.aws.region) };
  },

  permissions(config): PolicyStatement[] {
    const eip = config.elastic_ip;
    if (!eip) return [];
    const pool = eip.pool?.tags ?? {};
    const templated = Object.values(pool).some((v) => v.includes("{{"));
    return [
      { Sid: "ElasticIpRead", Effect: "Allow", Action: ["ec2:DescribeAddresses"], Resource: "*" },
      {
        Sid: "ElasticIpAssociateAddress",
        Effect: "Allow",
        Action: ["ec2:AssociateAddress"],
        Resource: `arn:aws:ec2:*:*:elastic-ip/${eip.allocation_id ?? "*"}`,
        ...(eip.allocation_id === undefined && {
          Condition: {
            [templated ? "StringLike" : "StringEquals"]: Object.fromEntries(
              Object.entries(pool).map(([k, v]) => [`aws:ResourceTag/${k}`, v.replace(/\{\{[^}]*\}\}\}?/g, "*")]),
            ),
          },
        }),
      },
      {
        Sid: "ElasticIpAssociateInstance",
        Effect: "Allow",
        Action: ["ec2:AssociateAddress"],
        Resource: ["arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:*:*:network-interface/*"],
      },
      ...handoffPermissions(config),
    ];
  },
};
