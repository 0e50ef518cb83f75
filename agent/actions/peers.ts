// Peers: the running instances in this VPC whose tags match each configured set, found with DescribeInstances. run
// waits (jittered polling) until each set has its `min`; the sets go to the files action.
import type { Filter, Instance } from "@aws-sdk/client-ec2";
import type { PeerSetConfig } from "../config/schema";
import { allOrConfigErrors } from "../core/errors";
import { quoted } from "../core/log";
import { describeInstancesStatement } from "../instance/tags";
import { poll } from "../core/retry";
import type { PeerView } from "../template/render";
import { mentionsTags, renderRequired, templateView } from "../template/render";
import type { Action, ActionContext, Outcome, Plan } from "./types";

// ---- pure parts -------------------------------------------------------------------------------------------------

/** DescribeInstances reads '*' and '?' in tag values as wildcards: a value from a template must match literally. */
export function escapeFilterWildcards(value: unknown): string {
  return String(value).replace(/[\\*?]/g, "\\$&");
}

/** Numeric IPv4 order (10.0.0.9 before 10.0.0.10); anything else after, by text. */
export function compareAddresses(a: string, b: string): number {
  const key = (ip: string) =>
    ip
      .split(".")
      .map((n) => n.padStart(3, "0"))
      .join(".");
  return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
}

/** One instance as templates see it; undefined without a private IPv4 address (IPv6-only instances). */
export function toPeer(i: Instance): PeerView | undefined {
  if (!i.InstanceId || !i.PrivateIpAddress) return undefined;
  const tags = Object.fromEntries((i.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""]));
  return {
    id: i.InstanceId,
    ip: i.PrivateIpAddress,
    // The Name tag; without one, EC2's private DNS name, so {{name}} is never empty when EC2 gave a name.
    name: tags.Name ?? i.PrivateDnsName ?? "",
    az: i.Placement?.AvailabilityZone ?? "",
    tags,
  };
}

/** The set: every instance but this one, once each, sorted by address. */
export function peerList(instances: Instance[], selfId: string): PeerView[] {
  const byId = new Map<string, PeerView>();
  for (const i of instances) {
    const peer = toPeer(i);
    if (peer && peer.id !== selfId) byId.set(peer.id, peer);
  }
  return [...byId.values()].sort((a, b) => compareAddresses(a.ip, b.ip) || a.id.localeCompare(b.id));
}

export interface PeerSetResult {
  peers: PeerView[];
  min: number;
  timeout: number;
  /** ok: at least min; waiting: fewer so far (a plan: run would wait); short: fewer when the wait ended. */
  status: "ok" | "waiting" | "short";
  waitedMs?: number;
}

/** What the peers action hands to the files action. */
export interface PeersOutput {
  sets: Record<string, PeerSetResult>;
  /** This instance's own tags (from IMDS or the API), which the filters were rendered with. */
  tags: Record<string, string>;
}

export function describeSet(name: string, r: PeerSetResult): string {
  // Names come from tags: quoted, so a hostile one reads as one value in the log.
  const list = r.peers.map((p) => [quoted(p.ip), ...(p.name ? [quoted(p.name)] : [])].join(" ")).join(", ");
  const head = `peers.${name}: ${r.peers.length} peer${r.peers.length === 1 ? "" : "s"}${list ? ` (${list})` : ""}`;
  switch (r.status) {
    case "ok":
      return head;
    case "waiting":
      return `${head}; fewer than min ${r.min}, so run waits up to ${r.timeout} s`;
    case "short":
      return `${head}; fewer than min ${r.min} after ${Math.round((r.waitedMs ?? 0) / 1000)} s`;
  }
}

// ---- reading the world ----------------------------------------------------------------------------------------

const usesTags = (sets: Record<string, PeerSetConfig>): boolean =>
  Object.values(sets).some((s) => Object.values(s.tags).some(mentionsTags));

/** The DescribeInstances filters of each set, with template values rendered against this instance's tags. */
async function filtersOf(
  ctx: ActionContext,
): Promise<{ tags: Record<string, string>; filters: Map<string, Filter[]> }> {
  const sets = ctx.config.peers ?? {};
  const tags = usesTags(sets) ? await ctx.tags() : {};
  const view = templateView(ctx.instance, tags);
  const scope: Filter[] = [
    { Name: "vpc-id", Values: [ctx.instance.vpcId] },
    { Name: "instance-state-name", Values: ["running"] },
  ];
  // Each render as a promise, so allOrConfigErrors reports every empty one of every set at once.
  const filter = (name: string, key: string, template: string): Promise<Filter> =>
    Promise.resolve().then(() => ({
      Name: `tag:${key}`,
      Values: [renderRequired(template, view, `peers.${name}.tags.${key}`, escapeFilterWildcards)],
    }));
  const entries = await allOrConfigErrors(
    Object.entries(sets).map(async ([name, set]): Promise<[string, Filter[]]> => {
      const tagFilters = await allOrConfigErrors(Object.entries(set.tags).map(([k, t]) => filter(name, k, t)));
      return [name, [...scope, ...tagFilters]];
    }),
  );
  return { tags, filters: new Map(entries) };
}

async function discover(ctx: ActionContext, name: string, filters: Filter[]): Promise<PeerView[]> {
  const instances: Instance[] = [];
  const what = `peers.${name} (${filters
    .filter((f) => f.Name?.startsWith("tag:"))
    .map((f) => `${f.Name!.slice(4)}=${f.Values?.[0] ?? ""}`)
    .join(", ")})`;
  let token: string | undefined;
  do {
    const page = token;
    const out = await ctx.aws.call(
      "ec2",
      what,
      (sdk) =>
        new sdk.DescribeInstancesCommand({ Filters: filters, MaxResults: 1000, ...(page && { NextToken: page }) }),
    );
    for (const r of out.Reservations ?? []) instances.push(...(r.Instances ?? []));
    token = out.NextToken;
  } while (token);
  return peerList(instances, ctx.instance.id);
}

/** Polls a short set until it has min peers or its timeout (or the run's deadline) passes. */
async function waitFor(ctx: ActionContext, name: string, filters: Filter[], r: PeerSetResult): Promise<PeerSetResult> {
  const started = ctx.clock.now();
  ctx.log.info(`waiting up to ${r.timeout} s for peers.${name} to have ${r.min} (now ${r.peers.length})`);
  let latest = r.peers;
  const result = await poll(
    async (attempt) => {
      if (attempt > 0) latest = await discover(ctx, name, filters);
      return latest.length >= r.min ? latest : undefined;
    },
    // Polite: a fleet booting together must not hammer DescribeInstances; the jitter spreads the polls.
    {
      label: `peers.${name}`,
      clock: ctx.clock,
      deadline: ctx.deadline,
      until: started + r.timeout * 1000,
      initialMs: 2000,
      factor: 1.5,
      maxMs: 15000,
    },
  );
  const waitedMs = ctx.clock.now() - started;
  return result.done
    ? { ...r, peers: result.value, status: "ok", waitedMs }
    : { ...r, peers: latest, status: "short", waitedMs };
}

// ---- the action -------------------------------------------------------------------------------------------------

export interface PeersPlanData {
  filters: Map<string, Filter[]>;
  output: PeersOutput;
}

/** The files action runs whenever `files` is configured, and reports the short sets itself (see files.ts). */
const filesReportShortSets = (ctx: ActionContext): boolean => ctx.config.files !== undefined;

export const peersAction: Action<PeersPlanData> = {
  name: "peers",

  enabled: (config) => Object.keys(config.peers ?? {}).length > 0,

  dependsOn: () => [],

  async plan(ctx): Promise<Plan<PeersPlanData>> {
    const { tags, filters } = await filtersOf(ctx);
    const entries = await Promise.all(
      Object.entries(ctx.config.peers ?? {}).map(async ([name, set]): Promise<[string, PeerSetResult]> => {
        const peers = await discover(ctx, name, filters.get(name)!);
        const status = peers.length >= set.min ? "ok" : set.timeout > 0 ? "waiting" : "short";
        return [name, { peers, min: set.min, timeout: set.timeout, status }];
      }),
    );
    const output: PeersOutput = { sets: Object.fromEntries(entries), tags };
    for (const [name, r] of entries) ctx.log.info(describeSet(name, r));
    return { changes: [], data: { filters, output }, output };
  },

  async apply(ctx, plan): Promise<Outcome> {
    const sets = Object.fromEntries(
      await Promise.all(
        Object.entries(plan.data.output.sets).map(async ([name, r]): Promise<[string, PeerSetResult]> => {
          if (r.status !== "waiting") return [name, r];
          const waited = await waitFor(ctx, name, plan.data.filters.get(name)!, r);
          if (waited.status === "ok") ctx.log.info(describeSet(name, waited));
          else ctx.log.warn(describeSet(name, waited));
          return [name, waited];
        }),
      ),
    );
    const output: PeersOutput = { sets, tags: plan.data.output.tags };
    const short = Object.entries(sets).filter(([, r]) => r.status === "short");
    const failures = filesReportShortSets(ctx) ? [] : short.map(([name, r]) => describeSet(name, r));
    return {
      changes: [],
      output,
      summary: Object.entries(sets)
        .map(([name, r]) => `${name}: ${r.peers.map((p) => p.ip).join(" ") || "none"}`)
        .join("; "),
      ...(failures.length > 0 && { failures }),
    };
  },

  // DescribeInstances finds the peers, and this instance's own tags when IMDS does not expose them.
  permissions: () => [describeInstancesStatement],
};
