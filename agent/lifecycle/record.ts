// What state.json keeps of the lifecycle: which phase the last wiring ran (prepared while parked in a warm pool, or
// wired), its launch hook, and the one stop path's run for whichever way the instance left.
import type { HookRecord } from "./hooks";
import type { Phase } from "./phase";

export interface LifecycleRecord {
  phase: Phase;
  /** IMDS's autoscaling/target-lifecycle-state when it ran; absent outside Auto Scaling. */
  target_state?: string;
  /** run (at boot) or watch (the pass that saw InService). */
  by: "run" | "watch";
  at: string;
  /** Files a prepare run left for InService. */
  deferred_files?: string[];
  launch_hook?: HookRecord[];
  /** Why no launch hook could be looked at (a group other than autoscaling.group, a hook name not in the group). */
  launch_hook_error?: string;
}

export type LeaveReason = "shutdown" | "spot-interruption" | "rebalance" | "termination";

export interface LeftRecord {
  reason: LeaveReason;
  /** What gave notice, in words: "spot instance-action terminate at 2026-…Z". */
  detail?: string;
  /** The time the notice leaves (the spot action's time), when it has one. */
  act_by?: string;
  started: string;
  finished: string;
  exit_code: number;
  termination_hook?: HookRecord[];
}

/** The lines `status` prints for them. */
export function describeLifecycle(lifecycle: LifecycleRecord | undefined, left: LeftRecord | undefined): string[] {
  const lines: string[] = [];
  // Outside Auto Scaling, with no hook, every run is simply "wired": nothing worth a line.
  const plain = lifecycle?.phase === "wired" && !lifecycle.target_state && !lifecycle.launch_hook?.length;
  if (lifecycle && !plain) {
    const state = lifecycle.target_state ? ` (${lifecycle.target_state})` : "";
    lines.push(
      lifecycle.phase === "prepared"
        ? `phase: prepared${state} by ${lifecycle.by} at ${lifecycle.at}; wiring waits for InService`
        : `phase: wired${state} by ${lifecycle.by} at ${lifecycle.at}`,
    );
    if (lifecycle.deferred_files?.length) lines.push(`  left for InService: ${lifecycle.deferred_files.join(", ")}`);
    for (const h of lifecycle.launch_hook ?? []) lines.push(`  launch hook ${describeHook(h)}`);
    if (lifecycle.launch_hook_error) lines.push(`  launch hook: ${lifecycle.launch_hook_error}`);
  }
  if (left) {
    lines.push(
      `left: ${left.reason}${left.detail ? ` (${left.detail})` : ""}, stop path ${left.started} → ${left.finished}, exit ${left.exit_code}`,
    );
    for (const h of left.termination_hook ?? []) lines.push(`  termination hook ${describeHook(h)}`);
  }
  return lines;
}

export function describeHook(h: HookRecord): string {
  const beats = h.heartbeats > 0 ? `, ${h.heartbeats} heartbeat${h.heartbeats === 1 ? "" : "s"}` : "";
  return `${h.hook} of ${h.group}: ${h.result ?? `not completed — ${h.error ?? "?"}`}${beats}`;
}
