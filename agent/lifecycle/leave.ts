// The one stop path, for every way an instance leaves: the shutdown (`bootlace stop`, the unit's ExecStop), a spot
// interruption notice, a rebalance recommendation, and an Auto Scaling termination. It undoes what should not outlive
// the instance (deregisters and waits while the target drains, deletes the records marked delete_on_shutdown) within
// the time the notice leaves, gives the termination hook heartbeats meanwhile and CONTINUE after, and records that it
// ran: a later run of it (the ExecStop at shutdown after `watch` did the work) finds it done and does not repeat it.
import type { Session } from "../commands/session";
import { exitCodes } from "../commands/session";
import { describeCause } from "../core/errors";
import type { Deadline } from "../core/retry";
import { deadlineAfter } from "../core/retry";
import type { StateFile } from "../root/state";
import type { Wiring, World } from "../wiring/procedure";
import { withWiring } from "../wiring/procedure";
import { nextState } from "../wiring/report";
import type { ActionResult, RunnerOptions } from "../wiring/runner";
import { stopAll } from "../wiring/runner";
import type { HookContext, HookRecord, PendingHook } from "./hooks";
import { completeHooks, pendingHooks, startHeartbeats } from "./hooks";
import type { LeaveReason, LeftRecord } from "./record";

export interface LeaveOptions {
  reason: LeaveReason;
  /** In words, for the log and state.json: "spot instance-action terminate at …". */
  detail?: string;
  /** Epoch ms by which everything must be done (a spot notice's time), when the notice gives one. */
  actBy?: number;
  /** Seconds the stop path may take at most (default --deadline). */
  within?: number;
}

export interface Left {
  results: ActionResult[];
  code: number;
  /** The undo had already run since the last wiring: nothing was repeated. */
  alreadyDone?: LeftRecord;
  hooks: HookRecord[];
}

/** Time kept after the drain for what follows it: the hook's CONTINUE, state.json. */
const AFTER_DRAIN_MS = 10_000;
/** Time kept before a notice's moment for the last calls to return. */
const BEFORE_ACT_MS = 2_000;

/**
 * The bounds of one stop path, from its start: the whole of it (the run's --deadline, or the notice's time less a
 * little), and the drain's end, early enough that the hook and the record still fit in.
 */
export function stopBounds(now: number, deadlineSeconds: number, actBy?: number): { seconds: number; drainBy: number } {
  const end = Math.min(now + deadlineSeconds * 1000, actBy !== undefined ? actBy - BEFORE_ACT_MS : Infinity);
  const total = Math.max(1000, end - now);
  const drainBy = now + Math.max(total / 2, total - AFTER_DRAIN_MS);
  return { seconds: total / 1000, drainBy: Math.round(drainBy) };
}

/** The undo already ran since the last wiring and finished cleanly: the shutdown has nothing left to do. */
export function alreadyLeft(previous: StateFile | undefined): LeftRecord | undefined {
  const left = previous?.left;
  if (!left || left.exit_code !== exitCodes.ok) return undefined;
  const wired = previous.run?.started;
  return wired === undefined || left.started >= wired ? left : undefined;
}

function terminationHookWanted(world: World, reason: LeaveReason): boolean {
  const config = world.loaded.config;
  // At shutdown the hook is long over (Auto Scaling stops the instance only after it), so no Auto Scaling call.
  return (
    reason !== "shutdown" &&
    config.autoscaling !== undefined &&
    config.autoscaling.termination_hook !== "off" &&
    world.lifecycleState !== undefined
  );
}

/**
 * What `stop` cannot know because state.json was damaged: per configured action that undoes something at stop,
 * whose saved part was lost, one line (it then undoes nothing of that action).
 */
function unknowable(w: Wiring): string[] {
  const config = w.runner.context.config;
  return w.runner.actions
    .filter((a) => a.stop && a.enabled(config) && (w.lost === "all" || w.lost.includes(a.name)))
    .map(
      (a) =>
        `stop: what ${a.name} made before is not known (its part of state.json was damaged), so stop undoes none ` +
        `of it; check by hand what should not outlive this instance`,
    );
}

/** Runs the stop path once, under the run lock, and records it. */
export async function leave(s: Session, world: World, o: LeaveOptions): Promise<Left> {
  const started = s.clock.now();
  const bounds = stopBounds(started, o.within ?? s.args.deadline, o.actBy);
  const step = deadlineAfter(s.clock, bounds.seconds);
  try {
    return await withWiring(s, world, { deadline: step.deadline, lock: true }, async (w) => {
      const done = alreadyLeft(w.previous);
      const h: HookContext = {
        aws: w.aws,
        clock: s.clock,
        deadline: step.deadline,
        log: s.log.child({ component: "lifecycle" }),
        instanceId: world.instance.id,
        config: world.loaded.config,
      };
      let pending: PendingHook[] = [];
      if (terminationHookWanted(world, o.reason)) {
        try {
          const found = await pendingHooks(h, "terminate");
          if ("none" in found) h.log.info(`no termination hook to complete: ${found.none}`);
          else pending = found.hooks;
        } catch (error) {
          h.log.error(`termination hook: ${describeCause(error)}`);
        }
      }
      if (done && pending.length === 0) {
        s.log.info(`the stop path already ran (${done.reason}, finished ${done.finished}): nothing to repeat`);
        return { results: [], code: exitCodes.ok, alreadyDone: done, hooks: [] };
      }
      s.log.info(
        `stop path (${o.reason}${o.detail ? `: ${o.detail}` : ""}): within ${bounds.seconds.toFixed(0)} s, draining until ${new Date(bounds.drainBy).toISOString()}`,
      );
      const beats = pending.length > 0 ? startHeartbeats(h, pending) : undefined;
      // The drain ends early enough for the hook and the record; calls still run to the step's own deadline.
      const drainDeadline: Deadline = { at: bounds.drainBy, signal: step.deadline.signal };
      const runner: RunnerOptions = { ...w.runner, context: { ...w.runner.context, deadline: drainDeadline } };
      let results: ActionResult[] = [];
      let counts: Map<string, number> | undefined;
      try {
        if (!done) {
          for (const line of unknowable(w)) s.log.warn(line);
          results = await stopAll(runner, runner.previous);
        }
      } finally {
        counts = await beats?.stop();
      }
      const hooks = pending.length > 0 ? await completeHooks(h, pending, "terminate", "CONTINUE", counts) : [];
      const failed = results.some((r) => r.status !== "ok") || hooks.some((k) => k.error !== undefined);
      const code = failed ? exitCodes.failed : exitCodes.ok;
      const finished = s.clock.now();
      const left: LeftRecord = done
        ? { ...done, ...(hooks.length > 0 && { termination_hook: hooks }) }
        : {
            reason: o.reason,
            ...(o.detail !== undefined && { detail: o.detail }),
            ...(o.actBy !== undefined && { act_by: new Date(o.actBy).toISOString() }),
            started: new Date(started).toISOString(),
            finished: new Date(finished).toISOString(),
            exit_code: code,
            ...(hooks.length > 0 && { termination_hook: hooks }),
          };
      const state = done
        ? w.previous!
        : nextState(w.previous, world.instance, "stop", results, started, finished, code);
      await w.save({ ...state, left });
      return { results, code, hooks, ...(done && { alreadyDone: done }) };
    });
  } finally {
    step.end();
  }
}
