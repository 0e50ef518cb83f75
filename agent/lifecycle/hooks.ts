// This instance's Auto Scaling lifecycle actions: which group it is in and in which state, the launch or termination
// hooks waiting on it, heartbeats while bootlace works, and the completion (CONTINUE or ABANDON) with a bounded retry
// of "No active Lifecycle Action found" (the answer while the action is not open yet, e.g. right after boot).
import type { LifecycleHook } from "@aws-sdk/client-auto-scaling";
import type { Aws } from "../aws/clients";
import type { Config } from "../config/schema";
import type { Clock } from "../core/clock";
import { AwsCallError, DeadlineError, describeCause } from "../core/errors";
import type { Logger } from "../core/log";
import type { Deadline } from "../core/retry";
import { retry } from "../core/retry";

export const LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING";
export const TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING";

export type Transition = "launch" | "terminate";
export type HookResult = "CONTINUE" | "ABANDON";

/** What the hook functions need: the AWS door and the run's time, the instance and the configuration. */
export interface HookContext {
  aws: Aws;
  clock: Clock;
  deadline: Deadline;
  log: Logger;
  instanceId: string;
  config: Config;
}

/** An instance as Auto Scaling sees it. */
export interface Membership {
  group: string;
  /** Auto Scaling's LifecycleState: Pending:Wait, InService, Terminating:Wait, Warmed:Running... */
  state: string;
}

export interface PendingHook {
  group: string;
  name: string;
  /** Seconds the action waits without a heartbeat before the hook's default result applies. */
  heartbeatTimeout: number;
}

/** What became of one hook's action, as state.json and `status` keep it. */
export interface HookRecord {
  group: string;
  hook: string;
  result?: HookResult;
  heartbeats: number;
  /** CompleteLifecycleAction calls made (more than one: "No active Lifecycle Action found" was retried). */
  attempts: number;
  error?: string;
}

/** The lifecycle states in which an action of this transition is open or about to open. */
const waiting: Record<Transition, readonly string[]> = {
  launch: ["Pending", "Pending:Wait", "Warmed:Pending", "Warmed:Pending:Wait"],
  terminate: ["Terminating", "Terminating:Wait", "Warmed:Terminating", "Warmed:Terminating:Wait"],
};

/** How long "No active Lifecycle Action found" is retried: the action opens within seconds of the state change. */
const NO_ACTIVE_RETRY_MS = 60_000;

/** Heartbeats every third of the hook's timeout, so one lost heartbeat still leaves time for the next. */
export function heartbeatIntervalMs(hooks: readonly PendingHook[]): number {
  const shortest = Math.min(...hooks.map((h) => h.heartbeatTimeout));
  return Math.max(1000, Math.round((shortest * 1000) / 3));
}

export function isNoActiveAction(error: unknown): boolean {
  return (
    error instanceof AwsCallError &&
    error.code === "ValidationError" &&
    /No active Lifecycle Action found/i.test(error.message)
  );
}

/** Each instance's group and lifecycle state (instances in no group are left out). */
export async function membershipOf(aws: Aws, instanceIds: readonly string[]): Promise<Map<string, Membership>> {
  const out = new Map<string, Membership>();
  if (instanceIds.length === 0) return out;
  const answer = await aws.call(
    "autoscaling",
    instanceIds.join(", "),
    (sdk) => new sdk.DescribeAutoScalingInstancesCommand({ InstanceIds: [...instanceIds] }),
  );
  for (const i of answer.AutoScalingInstances ?? []) {
    if (i.InstanceId && i.AutoScalingGroupName && i.LifecycleState) {
      out.set(i.InstanceId, { group: i.AutoScalingGroupName, state: i.LifecycleState });
    }
  }
  return out;
}

async function hooksOf(aws: Aws, group: string): Promise<LifecycleHook[]> {
  const out = await aws.call(
    "autoscaling",
    `group ${group}`,
    (sdk) => new sdk.DescribeLifecycleHooksCommand({ AutoScalingGroupName: group }),
  );
  return out.LifecycleHooks ?? [];
}

export type Pending = { hooks: PendingHook[]; membership: Membership } | { none: string };

/**
 * The hooks of this transition holding this instance now: its group (as Auto Scaling reports it: the group of its
 * aws:autoscaling:groupName tag), its state, and the group's hooks of that transition (for a launch, only the one
 * named by launch_hook when it names one). Throws when the configuration names a group or hook that is not there.
 */
export async function pendingHooks(h: HookContext, transition: Transition): Promise<Pending> {
  const self = (await membershipOf(h.aws, [h.instanceId])).get(h.instanceId);
  if (!self) return { none: "this instance is not in an Auto Scaling group" };
  const configured = h.config.autoscaling?.group;
  if (configured !== undefined && configured !== self.group) {
    throw new Error(
      `this instance is in Auto Scaling group ${self.group}, not ${configured} (autoscaling.group): no lifecycle action completed`,
    );
  }
  if (!waiting[transition].includes(self.state)) {
    return { none: `its lifecycle state is ${self.state}: no ${transition} action is waiting` };
  }
  const wanted = transition === "launch" ? LAUNCHING : TERMINATING;
  const named = transition === "launch" ? h.config.autoscaling?.launch_hook : undefined;
  const hooks = (await hooksOf(h.aws, self.group)).filter(
    (k) =>
      k.LifecycleTransition === wanted && (named === undefined || named === "auto" || k.LifecycleHookName === named),
  );
  if (named !== undefined && named !== "auto" && named !== "off" && hooks.length === 0) {
    throw new Error(`group ${self.group} has no launch lifecycle hook named ${named} (autoscaling.launch_hook)`);
  }
  if (hooks.length === 0) return { none: `group ${self.group} has no ${transition} lifecycle hook` };
  return {
    membership: self,
    hooks: hooks.map((k) => ({
      group: self.group,
      name: k.LifecycleHookName ?? "",
      // AWS's default when a hook does not say.
      heartbeatTimeout: k.HeartbeatTimeout ?? 3600,
    })),
  };
}

/** Heartbeats to every pending hook until stop(); a heartbeat that fails is said and tried again at the next beat. */
export function startHeartbeats(
  h: HookContext,
  hooks: readonly PendingHook[],
): { stop(): Promise<Map<string, number>> } {
  const counts = new Map<string, number>(hooks.map((k) => [k.name, 0]));
  const intervalMs = heartbeatIntervalMs(hooks);
  // Ends at stop() or at the deadline, whichever comes first (AbortSignal.any is newer than Node 18).
  const stopped = new AbortController();
  const onDeadline = (): void => stopped.abort();
  if (h.deadline.signal.aborted) stopped.abort();
  else h.deadline.signal.addEventListener("abort", onDeadline, { once: true });
  const loop = (async () => {
    // The first at once: when the action started (before boot, or when the state changed) is not known here, so
    // its timeout may be close; from then on every third of it.
    for (let first = true; !stopped.signal.aborted; first = false) {
      if (!first) {
        try {
          await h.clock.sleep(intervalMs, stopped.signal);
        } catch {
          return;
        }
      }
      await Promise.all(
        hooks.map(async (k) => {
          try {
            await h.aws.call(
              "autoscaling",
              `${k.name} of ${k.group} for ${h.instanceId}`,
              (sdk) =>
                new sdk.RecordLifecycleActionHeartbeatCommand({
                  AutoScalingGroupName: k.group,
                  LifecycleHookName: k.name,
                  InstanceId: h.instanceId,
                }),
            );
            counts.set(k.name, (counts.get(k.name) ?? 0) + 1);
            h.log.debug(`heartbeat to lifecycle hook ${k.name}`);
          } catch (error) {
            if (!h.deadline.signal.aborted)
              h.log.warn(`heartbeat to lifecycle hook ${k.name}: ${describeCause(error)}`);
          }
        }),
      );
    }
  })();
  return {
    stop: async () => {
      h.deadline.signal.removeEventListener("abort", onDeadline);
      stopped.abort();
      await loop;
      return counts;
    },
  };
}

/** "No active Lifecycle Action found" while the instance is no longer waiting: the action is over, not late. */
class ActionOverError extends Error {
  override readonly name = "ActionOver";
}

/**
 * Completes one hook's action, retrying "No active Lifecycle Action found" for a while when the instance is still in
 * a waiting state (the action may not be open yet); once it is not, the action is over and retrying is pointless.
 */
async function completeOne(
  h: HookContext,
  k: PendingHook,
  transition: Transition,
  result: HookResult,
  heartbeats: number,
): Promise<HookRecord> {
  let attempts = 0;
  const record = (extra: Partial<HookRecord>): HookRecord => ({
    group: k.group,
    hook: k.name,
    heartbeats,
    attempts,
    ...extra,
  });
  try {
    await retry(
      async () => {
        attempts++;
        try {
          await h.aws.call(
            "autoscaling",
            `${k.name} of ${k.group} for ${h.instanceId}`,
            (sdk) =>
              new sdk.CompleteLifecycleActionCommand({
                AutoScalingGroupName: k.group,
                LifecycleHookName: k.name,
                InstanceId: h.instanceId,
                LifecycleActionResult: result,
              }),
          );
        } catch (error) {
          if (!isNoActiveAction(error)) throw error;
          const now = (await membershipOf(h.aws, [h.instanceId])).get(h.instanceId);
          if (now && !waiting[transition].includes(now.state)) {
            throw new ActionOverError(`its lifecycle state is ${now.state} already`, { cause: error });
          }
          throw error;
        }
      },
      {
        label: `CompleteLifecycleAction ${k.name}`,
        clock: h.clock,
        deadline: { at: Math.min(h.deadline.at, h.clock.now() + NO_ACTIVE_RETRY_MS), signal: h.deadline.signal },
        initialMs: 1000,
        maxMs: 8000,
        retryable: isNoActiveAction,
        onRetry: (_e, attempt, delayMs) =>
          h.log.info(`lifecycle hook ${k.name}: no active lifecycle action yet; trying again`, { attempt, delayMs }),
      },
    );
    h.log.info(`completed lifecycle hook ${k.name} of ${k.group}: ${result}`, { attempts, heartbeats });
    return record({ result });
  } catch (error) {
    const cause = error instanceof DeadlineError && error.cause !== undefined ? error.cause : error;
    const why =
      cause instanceof ActionOverError
        ? `no active lifecycle action for ${h.instanceId}: ${cause.message} (the hook timed out, or someone else completed it)`
        : isNoActiveAction(cause)
          ? `no active lifecycle action for ${h.instanceId} after ${attempts} attempts: it never opened, timed out or was completed by someone else`
          : describeCause(cause);
    h.log.error(`lifecycle hook ${k.name} of ${k.group} not completed (${result}): ${why}`);
    return record({ error: why });
  }
}

/** Completes every pending hook with the result; each hook's record says how it went. */
export function completeHooks(
  h: HookContext,
  hooks: readonly PendingHook[],
  transition: Transition,
  result: HookResult,
  heartbeats: Map<string, number> = new Map(),
): Promise<HookRecord[]> {
  return Promise.all(hooks.map((k) => completeOne(h, k, transition, result, heartbeats.get(k.name) ?? 0)));
}
