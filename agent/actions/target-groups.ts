// ELBv2 target groups: registers this instance (or its private IP) in each configured group when it is not registered
// yet, waits until the load balancer reports it healthy; at shutdown deregisters it and waits while it drains.
import type {
  TargetDescription,
  TargetGroup,
  TargetHealthDescription,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import type { TargetGroupConfig } from "../config/schema";
import { allOrConfigErrors, AwsCallError, ConfigError } from "../core/errors";
import type { InstanceFacts } from "../instance/facts";
import { backoffDelay, type BackoffOptions } from "../core/retry";
import type { Action, ActionContext, Change, Outcome, Plan, PolicyStatement } from "./types";

// ---- pure parts -------------------------------------------------------------------------------------------------

/** This instance as a target of one group. */
export interface GroupTarget {
  arn: string;
  name: string;
  /** The instance id (target type instance) or the primary private IPv4 (target type ip). */
  id: string;
  port: number;
  /** "all" for an ip target outside the group's VPC, as RegisterTargets requires. */
  availabilityZone?: "all";
}

/** What this instance is to a group: its id or its address, on the configured port or the group's. */
export function targetFor(
  group: TargetGroup,
  instance: InstanceFacts,
  config: TargetGroupConfig,
  at: string,
): GroupTarget {
  const name = group.TargetGroupName ?? config.name ?? "?";
  const port = config.port ?? group.Port;
  const base = { arn: group.TargetGroupArn ?? "", name };
  const key = `${at}.${config.arn !== undefined ? "arn" : "name"}`;
  if (port === undefined) throw new ConfigError(`target group ${name} has no port; set port`, undefined, `${at}.port`);
  switch (group.TargetType) {
    case "instance":
      if (group.VpcId !== undefined && group.VpcId !== instance.vpcId) {
        throw new ConfigError(
          `target group ${name} is in ${group.VpcId}, this instance in ${instance.vpcId}: instance targets must share the VPC`,
          undefined,
          key,
        );
      }
      return { ...base, id: instance.id, port };
    case "ip":
      return {
        ...base,
        id: instance.privateIpv4,
        port,
        ...(group.VpcId !== undefined && group.VpcId !== instance.vpcId && { availabilityZone: "all" as const }),
      };
    default:
      throw new ConfigError(
        `target group ${name} has target type ${group.TargetType ?? "unknown"}; bootlace registers instance and ip targets`,
        undefined,
        key,
      );
  }
}

/** Registered means the load balancer knows the target and is not letting it go (draining is on its way out). */
export function isRegistered(h: TargetHealthDescription | undefined): boolean {
  const state = h?.TargetHealth?.State;
  return state !== undefined && h?.TargetHealth?.Reason !== "Target.NotRegistered" && state !== "draining";
}

export function describeHealth(h: TargetHealthDescription | undefined): string {
  const t = h?.TargetHealth;
  if (!t?.State) return "not reported";
  const reason = t.Reason ? `${t.Reason}${t.Description ? `: ${t.Description}` : ""}` : t.Description;
  return reason ? `${t.State} (${reason})` : t.State;
}

export type HealthVerdict = { op: "healthy" } | { op: "wait" } | { op: "fail"; reason: string };

/** States that waiting cannot turn healthy fail at once rather than holding the boot for wait_healthy seconds. */
export function healthVerdict(h: TargetHealthDescription | undefined): HealthVerdict {
  const state = h?.TargetHealth?.State;
  const reason = h?.TargetHealth?.Reason;
  if (state === "healthy") return { op: "healthy" };
  // Health checks are off for the group: there is nothing to wait for.
  if (state === "unavailable" && reason === "Target.HealthCheckDisabled") return { op: "healthy" };
  if (state === "unused" && reason !== "Target.NotRegistered") {
    return { op: "fail", reason: `${describeHealth(h)}: it will not become healthy by waiting` };
  }
  if (state === "draining" || state === "unhealthy.draining") {
    return { op: "fail", reason: `${describeHealth(h)}: something deregistered it` };
  }
  return { op: "wait" };
}

export function targetLabel(t: GroupTarget): string {
  return `${t.id} port ${t.port} in ${t.name}`;
}

function description(t: GroupTarget): TargetDescription {
  return { Id: t.id, Port: t.port, ...(t.availabilityZone && { AvailabilityZone: t.availabilityZone }) };
}

/** Seconds as a person reads them. */
const seconds = (ms: number): string => `${(ms / 1000).toFixed(0)} s`;

// ---- reading and changing the world -----------------------------------------------------------------------------

async function findGroup(ctx: ActionContext, config: TargetGroupConfig, at: string): Promise<TargetGroup> {
  const what = config.arn ?? config.name ?? "";
  const key = `${at}.${config.arn !== undefined ? "arn" : "name"}`;
  const missing = () => new ConfigError(`no target group ${what} in ${ctx.aws.region}`, undefined, key);
  const out = await ctx.aws.call(
    "elbv2",
    what,
    (sdk) =>
      new sdk.DescribeTargetGroupsCommand(
        config.arn !== undefined ? { TargetGroupArns: [config.arn] } : { Names: [what] },
      ),
    { notFound: { codes: ["TargetGroupNotFoundException", "TargetGroupNotFound"], error: missing } },
  );
  const group = out.TargetGroups?.[0];
  if (!group) throw missing();
  return group;
}

async function readHealth(ctx: ActionContext, t: GroupTarget): Promise<TargetHealthDescription | undefined> {
  const out = await ctx.aws.call(
    "elbv2",
    targetLabel(t),
    (sdk) => new sdk.DescribeTargetHealthCommand({ TargetGroupArn: t.arn, Targets: [description(t)] }),
  );
  return out.TargetHealthDescriptions?.find((d) => d.Target?.Id === t.id) ?? out.TargetHealthDescriptions?.[0];
}

async function register(ctx: ActionContext, t: GroupTarget): Promise<void> {
  await ctx.aws.call(
    "elbv2",
    targetLabel(t),
    (sdk) => new sdk.RegisterTargetsCommand({ TargetGroupArn: t.arn, Targets: [description(t)] }),
  );
}

/**
 * How target health is polled: the first look within a second (a target registered just now is never healthy
 * sooner), then less and less often — ×1.6 a time, jittered, at most every 20 s. A fleet's agents share ELBv2's
 * Describe* bucket (AWS: 40 burst, 10 per second for the account), so polls every few seconds from hundreds of
 * instances would crowd out the reads their boots need; the SDK waiter's fixed 15 s floor would notice late.
 */
export const HEALTH_POLL: BackoffOptions = { initialMs: 1000, factor: 1.6, maxMs: 20_000 };

/**
 * Waits a jittered, growing interval, then checks; until check() returns a value, or `until` (or the deadline) comes.
 * Unlike core/retry's poll(), the first look comes after the first wait: the state was just read, or just changed.
 */
async function pollAfterWaiting<T>(
  ctx: ActionContext,
  until: number,
  check: () => Promise<T | undefined>,
): Promise<{ done: true; value: T } | { done: false }> {
  const limit = Math.min(until, ctx.deadline.at);
  for (let attempt = 0; ; attempt++) {
    const left = limit - ctx.clock.now();
    if (left <= 0) return { done: false };
    await ctx.clock.sleep(Math.min(backoffDelay(attempt, HEALTH_POLL), left), ctx.deadline.signal);
    const value = await check();
    if (value !== undefined) return { done: true, value };
  }
}

/** Polls sparsely (HEALTH_POLL), saying what the load balancer reports as it changes. */
async function waitHealthy(ctx: ActionContext, t: GroupTarget, waitSeconds: number): Promise<string | undefined> {
  const started = ctx.clock.now();
  let last: TargetHealthDescription | undefined;
  let said = "";
  const result = await pollAfterWaiting(ctx, started + waitSeconds * 1000, async () => {
    last = await readHealth(ctx, t);
    const verdict = healthVerdict(last);
    const now = describeHealth(last);
    if (now !== said && verdict.op === "wait") ctx.log.info(`waiting for ${targetLabel(t)}: ${now}`);
    said = now;
    return verdict.op === "wait" ? undefined : verdict;
  });
  const waited = seconds(ctx.clock.now() - started);
  if (!result.done) return `${targetLabel(t)} not healthy after ${waited}: ${describeHealth(last)}`;
  if (result.value.op === "fail") return `${targetLabel(t)}: ${result.value.reason}`;
  ctx.log.info(`${targetLabel(t)} is healthy`, { ms: ctx.clock.now() - started });
  return undefined;
}

async function deregistrationDelayMs(ctx: ActionContext, t: GroupTarget): Promise<number> {
  const out = await ctx.aws.call(
    "elbv2",
    t.name,
    (sdk) => new sdk.DescribeTargetGroupAttributesCommand({ TargetGroupArn: t.arn }),
  );
  const value = out.Attributes?.find((a) => a.Key === "deregistration_delay.timeout_seconds")?.Value;
  // AWS's default when the attribute is not reported.
  return (value !== undefined && /^\d+$/.test(value) ? Number(value) : 300) * 1000;
}

/**
 * Deregisters one target and waits while it drains, at most the group's deregistration delay (and the deadline). A
 * delay that cannot be read is AWS's default, 300 s, and reported as a problem (the deregistration itself stands).
 */
async function deregister(ctx: ActionContext, t: GroupTarget): Promise<{ change?: Change; problem?: string }> {
  const started = ctx.clock.now();
  let problem: string | undefined;
  const [gone, delayMs] = await Promise.all([
    ctx.aws
      .call(
        "elbv2",
        targetLabel(t),
        (sdk) => new sdk.DeregisterTargetsCommand({ TargetGroupArn: t.arn, Targets: [description(t)] }),
      )
      .then(
        () => false,
        (error: unknown) => {
          // Already deregistered (or the group is gone): nothing left to undo.
          const code = error instanceof AwsCallError ? error.code : undefined;
          if (code === "InvalidTargetException" || code === "TargetGroupNotFoundException") return true;
          throw error;
        },
      ),
    deregistrationDelayMs(ctx, t).catch((error: unknown) => {
      problem = `${error instanceof Error ? error.message : String(error)}; waited for draining as if it were 300 s`;
      return 300_000;
    }),
  ]);
  if (gone) {
    ctx.log.info(`${targetLabel(t)} was not registered any more`);
    return {};
  }
  ctx.log.info(`deregistered ${targetLabel(t)}; waiting while it drains (at most ${seconds(delayMs)})`);
  // A fleet scaling in drains together: the same sparse polling as at boot.
  const drained = await pollAfterWaiting(ctx, started + delayMs, async () =>
    (await readHealth(ctx, t))?.TargetHealth?.State === "draining" ? undefined : true,
  );
  const took = seconds(ctx.clock.now() - started);
  if (!drained.done) {
    ctx.log.warn(`${targetLabel(t)} still draining after ${took}; the load balancer finishes it on its own`);
  }
  const change = {
    kind: "deregister",
    target: `target group ${t.name}`,
    detail: `${t.id} port ${t.port}; ${drained.done ? `drained in ${took}` : `still draining after ${took}`}`,
  };
  return { change, ...(problem !== undefined && { problem }) };
}

// ---- the action -------------------------------------------------------------------------------------------------

interface GroupPlan {
  target: GroupTarget;
  health: TargetHealthDescription | undefined;
  register: boolean;
}

export interface TargetGroupsPlanData {
  groups: GroupPlan[];
}

/** Saved for stop: where this instance is registered, and whether stop should take it out. */
export interface TargetGroupsSaved {
  deregisterOnShutdown: boolean;
  targets: GroupTarget[];
}

async function planGroups(ctx: ActionContext): Promise<GroupPlan[]> {
  const configs = ctx.config.load_balancer?.target_groups ?? [];
  const planned = await allOrConfigErrors(
    configs.map(async (config, i): Promise<GroupPlan> => {
      const at = `load_balancer.target_groups.${i}`;
      const target = targetFor(await findGroup(ctx, config, at), ctx.instance, config, at);
      const health = await readHealth(ctx, target);
      return { target, health, register: !isRegistered(health) };
    }),
  );
  const seen = new Set<string>();
  return planned.filter((p) => {
    const key = `${p.target.arn} ${p.target.id} ${p.target.port}`;
    if (seen.has(key)) {
      throw new ConfigError(`${targetLabel(p.target)} is configured twice`, undefined, "load_balancer.target_groups");
    }
    seen.add(key);
    return true;
  });
}

function registerChange(t: GroupTarget): Change {
  return { kind: "register", target: `target group ${t.name}`, detail: `${t.id} port ${t.port}` };
}

export const targetGroupsAction: Action<TargetGroupsPlanData> = {
  name: "load_balancer",

  enabled: (config) => (config.load_balancer?.target_groups.length ?? 0) > 0,

  dependsOn: () => [],

  async plan(ctx): Promise<Plan<TargetGroupsPlanData>> {
    const groups = await planGroups(ctx);
    return { changes: groups.filter((g) => g.register).map((g) => registerChange(g.target)), data: { groups } };
  },

  async apply(ctx, plan): Promise<Outcome> {
    const wait = ctx.config.load_balancer?.wait_healthy ?? 0;
    const changes: Change[] = [];
    const registered: GroupTarget[] = [];
    const healthy: string[] = [];
    const results = await Promise.all(
      plan.data.groups.map(async (g): Promise<string | undefined> => {
        try {
          if (g.register) {
            await register(ctx, g.target);
            changes.push(registerChange(g.target));
          }
        } catch (error) {
          return error instanceof Error ? error.message : String(error);
        }
        registered.push(g.target);
        if (wait === 0 || (!g.register && healthVerdict(g.health).op === "healthy")) return undefined;
        const problem = await waitHealthy(ctx, g.target, wait);
        if (!problem) healthy.push(g.target.name);
        return problem;
      }),
    );
    const failures = results.filter((r): r is string => r !== undefined);
    const saved: TargetGroupsSaved = {
      deregisterOnShutdown: ctx.config.load_balancer?.deregister_on_shutdown ?? true,
      targets: registered,
    };
    const names = registered.map((t) => t.name).join(", ");
    const summary =
      registered.length === 0
        ? undefined
        : `registered in ${names}${wait > 0 && failures.length === 0 ? " (healthy)" : ""}`;
    return {
      changes,
      state: saved,
      ...(summary !== undefined && { summary }),
      ...(failures.length > 0 && { failures }),
    };
  },

  /**
   * Without a usable state: the configured groups, and in them this instance's target where the load balancer has it
   * registered (draining is on its way out already). Only this instance's own target is ever deregistered.
   */
  async recover(ctx): Promise<TargetGroupsSaved> {
    const deregisterOnShutdown = ctx.config.load_balancer?.deregister_on_shutdown ?? true;
    if (!deregisterOnShutdown) return { deregisterOnShutdown, targets: [] };
    const groups = await planGroups(ctx);
    const targets = groups.filter((g) => isRegistered(g.health)).map((g) => g.target);
    ctx.log.info(
      `no usable state of its registrations: read from the configured groups: registered in ${targets.map((t) => t.name).join(", ") || "none"}`,
    );
    return { deregisterOnShutdown, targets };
  },

  async stop(ctx, saved): Promise<Outcome> {
    const state = saved as TargetGroupsSaved;
    if (!state.deregisterOnShutdown || state.targets.length === 0) {
      if (state.targets.length > 0) ctx.log.info("left registered (deregister_on_shutdown: false)");
      return { changes: [], state };
    }
    const kept: GroupTarget[] = [];
    const failures: string[] = [];
    const changes: Change[] = [];
    await Promise.all(
      state.targets.map(async (t) => {
        try {
          const { change, problem } = await deregister(ctx, t);
          if (change) changes.push(change);
          if (problem) failures.push(problem);
        } catch (error) {
          kept.push(t);
          failures.push(error instanceof Error ? error.message : String(error));
        }
      }),
    );
    return {
      changes,
      state: { ...state, targets: kept },
      ...(failures.length > 0 && { failures }),
    };
  },

  permissions(config): PolicyStatement[] {
    const lb = config.load_balancer;
    if (!lb || lb.target_groups.length === 0) return [];
    const groups = lb.target_groups.map((g) => g.arn ?? `arn:aws:elasticloadbalancing:*:*:targetgroup/${g.name}/*`);
    const reads = ["elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth"];
    if (lb.deregister_on_shutdown) reads.push("elasticloadbalancing:DescribeTargetGroupAttributes");
    return [
      // ELBv2's Describe* actions do not support resource-level permissions.
      { Sid: "TargetGroupsRead", Effect: "Allow", Action: reads, Resource: "*" },
      {
        Sid: "TargetGroupsRegister",
        Effect: "Allow",
        Action: [
          "elasticloadbalancing:RegisterTargets",
          ...(lb.deregister_on_shutdown ? ["elasticloadbalancing:DeregisterTargets"] : []),
        ],
        Resource: groups,
      },
    ];
  },
};
