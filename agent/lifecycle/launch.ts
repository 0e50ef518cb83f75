// The wiring in its place in the Auto Scaling lifecycle, for `run` at boot and for the `watch` pass that sees a
// running warm-pool instance go InService: in a Warmed:* state only the prepare phase runs; the group's pending launch
// hook is found before the actions apply, gets heartbeats while they run, and is completed once they are done —
// CONTINUE when every action succeeded (registered healthy, records INSYNC), else autoscaling.on_failure.
import type { Config } from "../config/schema";
import { describeCause } from "../core/errors";
import type { Logger } from "../core/log";
import type { Deadline } from "../core/retry";
import type { Session } from "../commands/session";
import { exitCodes } from "../commands/session";
import type { World } from "../wiring/procedure";
import { withWiring } from "../wiring/procedure";
import { nextState } from "../wiring/report";
import type { ActionResult } from "../wiring/runner";
import { applyAll, planAll } from "../wiring/runner";
import type { HookContext, HookRecord, HookResult, PendingHook } from "./hooks";
import { completeHooks, pendingHooks, startHeartbeats } from "./hooks";
import { deferredFiles, phaseFor, prepareConfig } from "./phase";
import type { LifecycleRecord } from "./record";

export interface Wired {
  results: ActionResult[];
  code: number;
  lifecycle: LifecycleRecord;
}

/** The launch hook is bootlace's to complete: the autoscaling section asks for it, and IMDS says Auto Scaling runs us. */
export function launchHookWanted(config: Config, lifecycleState: string | undefined): boolean {
  return config.autoscaling !== undefined && config.autoscaling.launch_hook !== "off" && lifecycleState !== undefined;
}

export function failureResult(config: Config): HookResult {
  return config.autoscaling?.on_failure === "continue" ? "CONTINUE" : "ABANDON";
}

/** The configuration the actions see in this lifecycle state: all of it, or only what prepares a parked instance. */
export function configForPhase(config: Config, lifecycleState: string | undefined): Config {
  return phaseFor(config, lifecycleState) === "prepared" ? prepareConfig(config) : config;
}

export interface WireOptions {
  deadline: Deadline;
  by: "run" | "watch";
  /** The target lifecycle state read just now (the world's at boot, the latest poll's in watch). */
  lifecycleState: string | undefined;
  log?: Logger;
}

/** Plans and applies the actions of this phase under the lock, completes the launch hook, and records both. */
export async function wireInstance(s: Session, world: World, o: WireOptions): Promise<Wired> {
  const started = s.clock.now();
  const config = world.loaded.config;
  const phase = phaseFor(config, o.lifecycleState);
  const log = o.log ?? s.log;
  if (phase === "prepared") {
    const later = deferredFiles(config);
    log.info(
      `lifecycle state ${o.lifecycleState}: preparing only (files that need no peers or addresses); wiring at InService` +
        (later.length > 0 ? `; left for then: ${later.join(", ")}` : ""),
    );
  }
  const options = { deadline: o.deadline, lock: true, config: configForPhase(config, o.lifecycleState), log };
  return withWiring(s, world, options, async (w) => {
    const h: HookContext = {
      aws: w.aws,
      clock: s.clock,
      deadline: o.deadline,
      log: log.child({ component: "lifecycle" }),
      instanceId: world.instance.id,
      config,
    };
    let pending: PendingHook[] = [];
    let hookError: string | undefined;
    if (launchHookWanted(config, o.lifecycleState)) {
      try {
        const found = await pendingHooks(h, "launch");
        if ("none" in found) h.log.debug(`no launch hook to complete: ${found.none}`);
        else pending = found.hooks;
      } catch (error) {
        hookError = describeCause(error);
        h.log.error(hookError);
      }
    }
    const beats = pending.length > 0 ? startHeartbeats(h, pending) : undefined;
    let results: ActionResult[];
    try {
      results = await applyAll(w.runner, await planAll(w.runner));
    } catch (error) {
      // A configuration error: nothing changed and nothing will be wired, so the hook need not run out its timeout.
      const counts = await beats?.stop();
      if (pending.length > 0) await completeHooks(h, pending, "launch", failureResult(config), counts);
      throw error;
    }
    const counts = await beats?.stop();
    const failed = results.some((r) => r.status !== "ok");
    const hooks: HookRecord[] =
      pending.length > 0
        ? await completeHooks(h, pending, "launch", failed ? failureResult(config) : "CONTINUE", counts)
        : [];
    const later = phase === "prepared" ? deferredFiles(config) : [];
    const lifecycle: LifecycleRecord = {
      phase,
      ...(o.lifecycleState !== undefined && { target_state: o.lifecycleState }),
      by: o.by,
      at: new Date(s.clock.now()).toISOString(),
      ...(later.length > 0 && { deferred_files: later }),
      ...(hooks.length > 0 && { launch_hook: hooks }),
      ...(hookError !== undefined && { launch_hook_error: hookError }),
    };
    const code = failed || hookError !== undefined || hooks.some((k) => k.error) ? exitCodes.failed : exitCodes.ok;
    const { left: _left, ...state } = nextState(
      w.previous,
      world.instance,
      "run",
      results,
      started,
      s.clock.now(),
      code,
    );
    // A new wiring starts a new stay: the last stop path's record would only mislead `status` and the shutdown.
    await w.save({ ...state, lifecycle });
    return { results, code, lifecycle };
  });
}
