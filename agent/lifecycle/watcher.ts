// What `watch` does about the lifecycle between its peer passes: every watch.notice_interval (jittered) it reads the
// target lifecycle state (in an Auto Scaling group), and on a spot instance the interruption notice and the rebalance
// recommendation; it takes the one stop path when the instance is leaving, and wires a running warm-pool instance
// when it goes InService. Each reading and each reaction has a deadline of its own.
import type { Session } from "../commands/session";
import { describeCause } from "../core/errors";
import { deadlineAfter } from "../core/retry";
import { RootFs } from "../root/fs";
import { readState } from "../root/state";
import type { World } from "../wiring/procedure";
import { imdsClient } from "../wiring/procedure";
import { wireInstance } from "./launch";
import type { LeaveOptions } from "./leave";
import { leave } from "./leave";
import type { Phase } from "./phase";
import type { RebalanceNotice, SpotNotice } from "./signals";
import { isWarmed, readLifecycleState, readRebalance, readSpotNotice } from "./signals";

/** What one reading found. */
export interface Signals {
  lifecycleState?: string;
  spot?: SpotNotice;
  rebalance?: RebalanceNotice;
}

export type Reaction =
  { kind: "leave"; options: LeaveOptions } | { kind: "wire" } | { kind: "log"; message: string; key: string };

/** What the watcher remembers between readings. */
export interface Memory {
  /** The phase of the last wiring (state.json's, then ours). */
  phase?: Phase;
  /** The stop path ran for these reasons (each reacted to once). */
  left: Set<string>;
  /** Notices already logged. */
  logged: Set<string>;
}

/**
 * Pure: what to do about one reading. The most urgent first: a termination, a spot notice, a rebalance
 * recommendation; then a parked instance gone InService is wired.
 */
export function react(world: World, signals: Signals, memory: Memory): Reaction[] {
  const config = world.loaded.config;
  const out: Reaction[] = [];
  const state = signals.lifecycleState;
  if ((state === "Terminated" || state === "Warmed:Terminated") && !memory.left.has("termination")) {
    out.push({ kind: "leave", options: { reason: "termination", detail: `target lifecycle state ${state}` } });
  }
  const spot = signals.spot;
  if (spot && !memory.left.has("spot-interruption") && !memory.logged.has("spot-interruption")) {
    const detail = `spot instance-action ${spot.action} at ${new Date(spot.time).toISOString()}`;
    if ((config.spot?.on_interruption ?? "stop") === "stop") {
      out.push({ kind: "leave", options: { reason: "spot-interruption", detail, actBy: spot.time } });
    } else out.push({ kind: "log", key: "spot-interruption", message: `${detail}; spot.on_interruption is off` });
  }
  const rebalance = signals.rebalance;
  const onRebalance = config.spot?.on_rebalance ?? "log";
  if (rebalance && onRebalance !== "off" && !memory.left.has("rebalance") && !memory.logged.has("rebalance")) {
    const detail = `rebalance recommendation of ${new Date(rebalance.noticeTime).toISOString()}`;
    if (onRebalance === "stop") out.push({ kind: "leave", options: { reason: "rebalance", detail } });
    else out.push({ kind: "log", key: "rebalance", message: `${detail}: EC2 may interrupt this spot instance soon` });
  }
  if (state === "InService" && memory.phase === "prepared" && memory.left.size === 0) out.push({ kind: "wire" });
  return out;
}

export class LifecycleWatcher {
  private readonly memory: Memory = { left: new Set(), logged: new Set() };
  private latest: string | undefined;

  private constructor(
    private readonly s: Session,
    private world: World,
  ) {
    this.latest = world.lifecycleState;
  }

  /** A watcher for this world, with the phase of the last wiring from state.json. */
  static async start(s: Session, world: World): Promise<LifecycleWatcher> {
    const w = new LifecycleWatcher(s, world);
    const { state } = await readState(new RootFs(s.args.root), { instanceId: world.instance.id });
    if (state?.lifecycle) w.memory.phase = state.lifecycle.phase;
    return w;
  }

  /** In words, for watch's first line. */
  describe(): string {
    const parts = [
      ...(this.world.lifecycleState !== undefined ? [`Auto Scaling (${this.world.lifecycleState})`] : []),
      ...(this.world.spot ? ["spot notices"] : []),
    ];
    const every = this.world.loaded.config.watch?.notice_interval ?? 5;
    return parts.length > 0 ? `${parts.join(", ")} every ${every} s` : "no lifecycle to follow";
  }

  /** Whether there is anything to read: a member of an Auto Scaling group, or a spot instance. */
  get active(): boolean {
    return this.world.lifecycleState !== undefined || this.world.spot === true;
  }

  /** Parked in a warm pool, or gone: the peer passes have nothing to do. */
  get idle(): boolean {
    return isWarmed(this.latest) || this.memory.phase === "prepared" || this.memory.left.size > 0;
  }

  /** After a reload: the new configuration; what was handled stays handled. */
  update(world: World): void {
    this.world = world;
  }

  /** One reading and what follows from it. Never throws: a failed reading is said, and the next one tries again. */
  async tick(): Promise<void> {
    const s = this.s;
    let signals: Signals;
    const step = deadlineAfter(s.clock, Math.min(s.args.deadline, 30));
    const imds = imdsClient(s, step.deadline, this.world.imdsTokens);
    try {
      const inGroup = this.world.lifecycleState !== undefined;
      const spot = this.world.spot === true;
      const [lifecycleState, notice, rebalance] = await Promise.all([
        inGroup ? readLifecycleState(imds) : undefined,
        spot ? readSpotNotice(imds) : undefined,
        spot ? readRebalance(imds) : undefined,
      ]);
      signals = {
        ...(lifecycleState !== undefined && { lifecycleState }),
        ...(notice && { spot: notice }),
        ...(rebalance && { rebalance }),
      };
    } catch (error) {
      s.log.warn(`lifecycle reading failed: ${describeCause(error)}; trying again at the next one`);
      return;
    } finally {
      step.end();
      await imds.close();
    }
    if (signals.lifecycleState !== this.latest) {
      s.log.info(`target lifecycle state: ${signals.lifecycleState ?? "none"} (was ${this.latest ?? "none"})`);
      this.latest = signals.lifecycleState;
    }
    for (const reaction of react(this.world, signals, this.memory)) await this.act(reaction);
  }

  private async act(r: Reaction): Promise<void> {
    const s = this.s;
    if (r.kind === "log") {
      s.log.warn(r.message);
      this.memory.logged.add(r.key);
      return;
    }
    if (r.kind === "leave") {
      this.memory.left.add(r.options.reason);
      try {
        const left = await leave(s, this.world, r.options);
        s.log.info(`stop path (${r.options.reason}) done: exit ${left.code}`);
      } catch (error) {
        s.log.error(`stop path (${r.options.reason}) failed: ${describeCause(error)}`);
      }
      return;
    }
    const step = deadlineAfter(s.clock, s.args.deadline);
    try {
      s.log.info("InService: wiring the instance now");
      const wired = await wireInstance(s, this.world, {
        deadline: step.deadline,
        by: "watch",
        lifecycleState: this.latest,
      });
      this.memory.phase = wired.lifecycle.phase;
      s.log.info(`wired at InService: exit ${wired.code}`);
    } catch (error) {
      s.log.error(`wiring at InService failed: ${describeCause(error)}; trying again at the next reading`);
    } finally {
      step.end();
    }
  }
}
