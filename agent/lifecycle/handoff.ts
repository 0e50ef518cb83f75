// Elastic IP handoff: an address held by an instance that is leaving — stopping or shutting down, gone, or not
// InService in this instance's own Auto Scaling group (a replacement under an instance refresh) — is waited for,
// at most elastic_ip.handoff seconds, and then claimed (as every claim is: elastic-ip.ts). An address held by an
// instance in service is never part of a handoff: only allow_reassociation takes it.
import type { Address } from "@aws-sdk/client-ec2";
import type { Candidate } from "../actions/elastic-ip";
import type { ActionContext, Change, PolicyStatement } from "../actions/types";
import type { Config } from "../config/schema";
import { poll } from "../core/retry";
import type { Membership } from "./hooks";
import { membershipOf } from "./hooks";

/** elastic_ip.handoff when the configuration does not say. */
export const HANDOFF_SECONDS = 120;

/** The instance holding an address, as EC2 and Auto Scaling see it. */
export interface Holder {
  id: string;
  /** EC2's state name; undefined when EC2 no longer knows the instance. */
  state?: string;
  group?: string;
  groupState?: string;
}

export interface HeldAddress {
  address: Address;
  holder: string;
  why: string;
}

export interface HandoffPlan {
  seconds: number;
  held: HeldAddress[];
}

const present = (v: string | undefined): v is string => v !== undefined && v !== "";
const describe = (a: Address): string => `${a.AllocationId ?? "?"} (${a.PublicIp ?? "?"})`;

/** EC2 states of an instance on its way out. A stopped one is not: it may start again and expect its address. */
const LEAVING_STATES = ["stopping", "shutting-down", "terminated"];

/** Why the holder counts as leaving; undefined when it is in service (or cannot be told apart from it). */
export function leavingReason(h: Holder, ownGroup: string | undefined): string | undefined {
  if (h.state === undefined) return "EC2 no longer knows it";
  if (LEAVING_STATES.includes(h.state)) return `it is ${h.state}`;
  if (ownGroup !== undefined && h.group === ownGroup && h.groupState !== "InService") {
    return `it is ${h.groupState ?? "not InService"} in Auto Scaling group ${ownGroup}`;
  }
  return undefined;
}

/** The instance behind each associated address: its InstanceId, or the instance its network interface is attached to. */
async function holderIds(ctx: ActionContext, addresses: readonly Address[]): Promise<Map<string, string>> {
  const byAddress = new Map<string, string>();
  const enis: string[] = [];
  for (const a of addresses) {
    if (present(a.InstanceId)) byAddress.set(a.AllocationId ?? "", a.InstanceId);
    else if (present(a.NetworkInterfaceId)) enis.push(a.NetworkInterfaceId);
  }
  if (enis.length > 0) {
    const out = await ctx.aws.call(
      "ec2",
      enis.join(", "),
      (sdk) => new sdk.DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: enis }),
    );
    const attached = new Map(
      (out.NetworkInterfaces ?? []).map((n) => [n.NetworkInterfaceId ?? "", n.Attachment?.InstanceId ?? ""]),
    );
    for (const a of addresses) {
      const id = attached.get(a.NetworkInterfaceId ?? "");
      if (!present(a.InstanceId) && present(id)) byAddress.set(a.AllocationId ?? "", id);
    }
  }
  return byAddress;
}

/** The holders' EC2 states and, with an autoscaling section, their groups (and this instance's own group). */
async function holders(ctx: ActionContext, ids: readonly string[]): Promise<{ holders: Holder[]; ownGroup?: string }> {
  const unique = [...new Set(ids)];
  const described = await ctx.aws.call(
    "ec2",
    unique.join(", "),
    // A filter rather than InstanceIds: an id EC2 has forgotten is simply not listed, instead of failing the call.
    (sdk) => new sdk.DescribeInstancesCommand({ Filters: [{ Name: "instance-id", Values: unique }] }),
  );
  const states = new Map<string, string>();
  for (const r of described.Reservations ?? []) {
    for (const i of r.Instances ?? []) if (i.InstanceId && i.State?.Name) states.set(i.InstanceId, i.State.Name);
  }
  const groups: Map<string, Membership> =
    ctx.config.autoscaling !== undefined
      ? await membershipOf(ctx.aws, [ctx.instance.id, ...unique])
      : new Map<string, Membership>();
  const ownGroup = groups.get(ctx.instance.id)?.group;
  return {
    holders: unique.map((id): Holder => {
      const state = states.get(id);
      const member = groups.get(id);
      return {
        id,
        ...(state !== undefined && { state }),
        ...(member && { group: member.group, groupState: member.state }),
      };
    }),
    ...(ownGroup !== undefined && { ownGroup }),
  };
}

/** The addresses held by leaving instances, with who holds each and why it counts as leaving. */
async function heldByLeaving(ctx: ActionContext, addresses: readonly Address[]): Promise<HeldAddress[]> {
  const associated = addresses.filter(
    (a) =>
      (present(a.AssociationId) || present(a.NetworkInterfaceId) || present(a.InstanceId)) &&
      a.InstanceId !== ctx.instance.id,
  );
  if (associated.length === 0) return [];
  const ids = await holderIds(ctx, associated);
  const known = await holders(ctx, [...ids.values()]);
  const byId = new Map(known.holders.map((h) => [h.id, h]));
  return associated.flatMap((address) => {
    const id = ids.get(address.AllocationId ?? "");
    const holder = id === undefined ? undefined : byId.get(id);
    const why = holder ? leavingReason(holder, known.ownGroup) : undefined;
    return holder && why !== undefined ? [{ address, holder: holder.id, why }] : [];
  });
}

/**
 * When nothing can be claimed at once: the handoff, if some address is held by an instance that is leaving. The
 * decision tries those addresses; apply waits for them first (awaitHandoff).
 */
export async function planHandoff(
  ctx: ActionContext,
  addresses: readonly Address[],
): Promise<
  { plan: HandoffPlan; decision: { op: "associate"; candidates: Candidate[] }; changes: Change[] } | undefined
> {
  const seconds = ctx.config.elastic_ip?.handoff ?? HANDOFF_SECONDS;
  if (seconds === 0) return undefined;
  const held = await heldByLeaving(ctx, addresses);
  if (held.length === 0) return undefined;
  for (const h of held) ctx.log.info(`${describe(h.address)} is held by ${h.holder}, which is leaving: ${h.why}`);
  return {
    plan: { seconds, held },
    decision: { op: "associate", candidates: held.map((h) => ({ address: h.address, reassociate: true })) },
    changes: held.slice(0, 1).map((h) => ({
      kind: "handoff",
      target: describe(h.address),
      detail: `from ${h.holder} (${h.why}): waiting up to ${seconds} s for it to be released, then taking it`,
    })),
  };
}

async function describeAll(ctx: ActionContext, ids: string[]): Promise<Address[]> {
  const out = await ctx.aws.call(
    "ec2",
    ids.join(", "),
    (sdk) => new sdk.DescribeAddressesCommand({ AllocationIds: ids }),
  );
  return out.Addresses ?? [];
}

/**
 * Waits until an address of the handoff is released (then it is claimed like a free one), at most the handoff's
 * seconds; after that the addresses still held by instances that are still leaving are taken from them.
 */
export async function awaitHandoff(ctx: ActionContext, plan: HandoffPlan): Promise<Candidate[]> {
  const started = ctx.clock.now();
  const ids = plan.held.map((h) => h.address.AllocationId ?? "");
  const isFree = (a: Address): boolean =>
    !present(a.AssociationId) && !present(a.InstanceId) && !present(a.NetworkInterfaceId);
  const released = await poll(
    async () => {
      const free = (await describeAll(ctx, ids)).filter(isFree);
      return free.length > 0 ? free : undefined;
    },
    {
      label: `DescribeAddresses ${ids.join(", ")}`,
      clock: ctx.clock,
      deadline: ctx.deadline,
      until: started + plan.seconds * 1000,
      initialMs: 1000,
      factor: 1.5,
      maxMs: 5000,
    },
  );
  const waited = `${((ctx.clock.now() - started) / 1000).toFixed(0)} s`;
  if (released.done) {
    ctx.log.info(`handoff: ${released.value.map(describe).join(", ")} released after ${waited}; claiming`);
    return released.value.map((address) => ({ address, reassociate: false }));
  }
  // Time is up: take what is still held by an instance that is still leaving (one back in service keeps its own).
  const now = await describeAll(ctx, ids);
  const still = await heldByLeaving(ctx, now);
  const free = now.filter(isFree).map((address) => ({ address, reassociate: false }));
  const taken = still.map((h) => {
    ctx.log.warn(`handoff: ${describe(h.address)} still held by ${h.holder} after ${waited} (${h.why}); taking it`);
    return { address: h.address, reassociate: true };
  });
  if (free.length + taken.length === 0) {
    throw new Error(
      `handoff: after ${waited} no address of the handoff is free or held by a leaving instance (${now.map(describe).join(", ")}): nothing was taken`,
    );
  }
  return [...free, ...taken];
}

/** What the handoff reads: the holders' instances and interfaces, and their Auto Scaling groups. */
export function handoffPermissions(config: Config): PolicyStatement[] {
  if (!config.elastic_ip || config.elastic_ip.handoff === 0) return [];
  return [
    {
      Sid: "ElasticIpHandoffRead",
      Effect: "Allow",
      Action: [
        "ec2:DescribeInstances",
        "ec2:DescribeNetworkInterfaces",
        ...(config.autoscaling !== undefined ? ["autoscaling:DescribeAutoScalingInstances"] : []),
      ],
      Resource: "*",
    },
  ];
}
